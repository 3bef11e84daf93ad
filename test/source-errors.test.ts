// A failing source or an unserializable message ends that one stream cleanly: the chunked body is
// terminated, the error is logged once through request.log, and the server serves everyone else.
import t from 'tap'
import type { ServerResponse } from 'node:http'
import { build, listen, open, messages, deferred, type LogLine } from './helpers.js'
import type { CometSource } from '../types/index.js'

// Nothing may escape as an unhandled rejection or uncaught exception while these tests run.
const escaped: unknown[] = []
const record = (err: unknown): void => { escaped.push(err) }
process.on('unhandledRejection', record)
process.on('uncaughtException', record)
t.teardown(() => {
  process.off('unhandledRejection', record)
  process.off('uncaughtException', record)
})
const errorsOf = (logs: LogLine[]): LogLine[] => logs.filter(line => line.level >= 50)

interface Case {
  name: string
  source: () => CometSource<unknown>
  delivered: unknown[]
  logged: RegExp
  code?: string
}

const cases: Case[] = [
  {
    name: 'an async generator that throws before its first message',
    source: () => (async function * () { throw new Error('boom at once') })(),
    delivered: [],
    logged: /boom at once/
  },
  {
    name: 'an async generator that throws mid-stream',
    source: () => (async function * () {
      yield 1
      yield 2
      throw new Error('boom mid-stream')
    })(),
    delivered: [1, 2],
    logged: /boom mid-stream/
  },
  {
    name: 'a sync generator that throws mid-stream',
    source: () => (function * () {
      yield 'a'
      throw new Error('sync boom')
    })(),
    delivered: ['a'],
    logged: /sync boom/
  },
  {
    name: 'a source function that throws',
    source: () => () => { throw new Error('function boom') },
    delivered: [],
    logged: /function boom/
  },
  {
    name: 'an iterable whose iterator cannot be created',
    source: () => ({ [Symbol.asyncIterator] () { throw new Error('iterator boom') } }),
    delivered: [],
    logged: /iterator boom/
  },
  {
    name: 'a message JSON cannot represent (undefined)',
    source: () => ['before', undefined, 'after'],
    delivered: ['before'],
    logged: /cannot be sent as JSON/,
    code: 'FST_COMET_UNSERIALIZABLE_MESSAGE'
  },
  {
    name: 'a BigInt message',
    source: () => (async function * () {
      yield 'before'
      yield 10n
    })(),
    delivered: ['before'],
    logged: /BigInt/,
    code: 'FST_COMET_UNSERIALIZABLE_MESSAGE'
  },
  {
    name: 'a circular message',
    source: () => {
      const circular: Record<string, unknown> = {}
      circular.self = circular
      return [{ ok: true }, circular]
    },
    delivered: [{ ok: true }],
    logged: /circular/i,
    code: 'FST_COMET_UNSERIALIZABLE_MESSAGE'
  },
  {
    name: 'a function message',
    source: () => [() => {}],
    delivered: [],
    logged: /cannot be sent as JSON/,
    code: 'FST_COMET_UNSERIALIZABLE_MESSAGE'
  }
]

for (const c of cases) {
  t.test(`${c.name}: the stream ends cleanly and the error is logged once`, async t => {
    const { app, logs } = await build(t, { padding: 0 })
    let settled!: Promise<void>
    app.get('/comet', (request, reply) => {
      settled = reply.comet(c.source(), 'cb')
      return settled
    })
    app.get('/ok', async () => 'still serving')
    const url = await listen(app)
    const stream = await open(`${url}/comet`)
    await stream.ended // 'end' only fires when the terminating chunk arrived
    await settled
    t.same(messages(stream.body(), 'cb'), c.delivered, 'what came before the failure was delivered')
    const errors = errorsOf(logs)
    t.equal(errors.length, 1, 'logged once')
    t.match(errors[0].err?.message, c.logged)
    t.ok(typeof errors[0].reqId === 'string', 'logged through the request logger')
    if (c.code !== undefined) t.equal(errors[0].err?.code, c.code)
    t.equal(await (await fetch(`${url}/ok`)).text(), 'still serving')
  })
}

t.test('an unserializable message closes the source, running its finally block', async t => {
  const { app } = await build(t, { padding: 0 })
  let finalized = false
  app.get('/comet', (request, reply) => reply.comet((async function * () {
    try {
      yield Symbol('not JSON')
      yield 'never'
    } finally {
      finalized = true
    }
  }()), 'cb'))
  const res = await app.inject('/comet')
  t.equal(res.statusCode, 200)
  t.same(messages(res.body, 'cb'), [])
  t.ok(finalized)
})

t.test('a socket destroyed under a running stream ends it without an error log', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  let settled!: Promise<void>
  let raw!: ServerResponse
  const clientHasFirst = deferred()
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    settled = reply.comet((async function * () {
      yield 'first'
      await clientHasFirst.promise
      // The connection dies under the stream; the writes that follow go to a dead socket.
      request.raw.socket.destroy()
      for (let i = 0; i < 100; i++) yield 'x'.repeat(1000)
    }()), 'cb')
    return settled
  })
  app.get('/ok', async () => 'still serving')
  const url = await listen(app)
  const stream = await open(`${url}/comet`)
  await stream.waitFor('0,"first",')
  clientHasFirst.resolve()
  await stream.ended.catch(() => {})
  await settled
  t.ok(raw.destroyed)
  t.same(errorsOf(logs), [], 'a dead socket is not an application error')
  t.equal(await (await fetch(`${url}/ok`)).text(), 'still serving')
})

t.test('a sync generator is closed when one of its messages cannot be sent', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  let finalized = false
  app.get('/comet', (request, reply) => reply.comet((function * () {
    try {
      yield 'ok'
      yield () => 'not JSON'
      yield 'never'
    } finally {
      finalized = true
    }
  })(), 'cb'))
  const res = await app.inject('/comet')
  t.same(messages(res.body, 'cb'), ['ok'])
  t.ok(finalized, "the generator's finally block ran")
  t.equal(errorsOf(logs).length, 1)
})

t.test("an iterator whose return() throws or rejects does not disturb the stream's end", async t => {
  const { app, logs } = await build(t, { padding: 0 })
  let returns = 0
  const iterable = (fails: () => unknown): AsyncIterable<unknown> => ({
    [Symbol.asyncIterator]: () => ({
      next: async () => ({ done: false, value: 10n }), // unserializable: the stream closes the iterator
      return: () => {
        returns++
        return fails() as Promise<IteratorResult<unknown>>
      }
    })
  })
  app.get('/rejects', (request, reply) => reply.comet(iterable(() => Promise.reject(new Error('return rejected'))), 'cb'))
  app.get('/throws', (request, reply) => reply.comet(iterable(() => { throw new Error('return threw') }), 'cb'))
  for (const url of ['/rejects', '/throws']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200)
    t.same(messages(res.body, 'cb'), [])
  }
  await new Promise(setImmediate)
  t.equal(returns, 2)
  t.equal(errorsOf(logs).length, 2, 'only the unserializable messages are logged')
})

t.test('a source function that throws a non-error still ends the stream as failed', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(() => { throw undefined }, 'cb')) // eslint-disable-line no-throw-literal
  const res = await app.inject('/comet')
  t.equal(res.statusCode, 200)
  t.equal(errorsOf(logs).length, 1)
})

// Registered last, so it runs after every stream above has ended.
t.test('no unhandled rejection or uncaught exception escaped', async t => {
  await new Promise(setImmediate)
  t.same(escaped, [])
})
