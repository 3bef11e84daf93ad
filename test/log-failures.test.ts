// Logging a source's error must never take the stream or the process down: an error whose
// `message` or `stack` getter throws, or a revoked Proxy that throws on every property read, still
// ends that one stream cleanly, and the server keeps serving. A stream that never ends fails as a
// timeout; an unhandled rejection or uncaught exception fails at once.
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyComet from '../lib/index.js'
import { build, listen, open } from './helpers.js'
import type { CometSource } from '../types/index.js'

function throwingGetter (name: 'message' | 'stack'): unknown {
  const err = new Error('hostile')
  Object.defineProperty(err, name, { get () { throw new Error(`${name} getter throws`) } })
  return err
}

function revokedProxy (): unknown {
  const { proxy, revoke } = Proxy.revocable({}, {})
  revoke()
  return proxy
}

const HOSTILE: Array<[string, () => unknown]> = [
  ['an error whose message getter throws', () => throwingGetter('message')],
  ['an error whose stack getter throws', () => throwingGetter('stack')],
  ['a revoked Proxy', revokedProxy]
]

const SOURCES: Array<[string, (app: FastifyInstance, failure: () => unknown) => CometSource]> = [
  ['an async generator', (app, failure) => (async function * () {
    yield 'before'
    throw failure()
  }())],
  ['a sync generator', (app, failure) => (function * () {
    yield 'before'
    throw failure()
  }())],
  ['a source function', (app, failure) => () => { throw failure() }],
  ['a push source', (app, failure) => {
    const out = app.comet.push<string>()
    out.push('before')
    setImmediate(() => out.error(failure()))
    return out
  }]
]

for (const [hostileName, failure] of HOSTILE) {
  for (const [sourceName, makeSource] of SOURCES) {
    t.test(`${hostileName}, from ${sourceName}, ends the stream, not the process`, { timeout: 5000 }, async t => {
      const crashes: unknown[] = []
      let crashed!: () => void
      const crash = new Promise<'crashed'>(resolve => { crashed = () => resolve('crashed') })
      const record = (err: unknown): void => {
        crashes.push(err)
        crashed()
      }
      process.on('unhandledRejection', record)
      process.on('uncaughtException', record)
      t.teardown(() => {
        process.removeListener('unhandledRejection', record)
        process.removeListener('uncaughtException', record)
      })
      const { app } = await build(t, { padding: 0 })
      // reply.comet() throws only before anything is written; after that, failures end the stream.
      let threw!: () => void
      const throwing = new Promise<'reply.comet() threw'>(resolve => { threw = () => resolve('reply.comet() threw') })
      app.get('/failing', (request, reply) => {
        try {
          return reply.comet(makeSource(app, failure), 'cb')
        } catch (err) {
          if (reply.sent) threw()
          throw err
        }
      })
      app.get('/fine', (request, reply) => reply.comet(['still serving'], 'cb'))
      const url = await listen(app)

      const client = await open(`${url}/failing`)
      t.equal(client.res.statusCode, 200, 'the stream started')
      const outcome = await Promise.race([client.ended.then(() => 'ended', () => 'aborted'), crash, throwing])
      t.equal(outcome, 'ended', 'the response ended cleanly')
      t.same(crashes, [], 'no unhandled rejection or uncaught exception')
      if (outcome === 'ended' && sourceName !== 'a source function') {
        t.match(client.body(), '0,"before",', 'what came before the failure arrived')
      }
      const second = await open(`${url}/fine`)
      await second.ended
      t.match(second.body(), '0,"still serving",', 'the server keeps serving')
    })
  }
}

t.test('a logger that throws even on plain data does not take the stream down', async t => {
  const fails = (): never => { throw new Error('log sink down') }
  const quiet = (): void => {}
  const logger = { level: 'error', fatal: fails, error: fails, warn: quiet, info: quiet, debug: quiet, trace: quiet, silent: quiet, child () { return logger } }
  const app = Fastify({ loggerInstance: logger as never })
  t.teardown(() => app.close())
  await app.register(fastifyComet, { padding: 0, helmet: false })
  app.get('/failing', (request, reply) => reply.comet((async function * () {
    yield 'before'
    throw new Error('source failed')
  })(), 'cb'))
  const client = await open(`${await listen(app)}/failing`)
  await client.ended
  t.match(client.body(), '[0,"before",]', 'what came before the failure was delivered, and the response ended')
})
