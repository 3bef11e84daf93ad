// A comet document is a body: a status that forbids one (204 No Content, 304 Not Modified) set
// before reply.comet() is refused before anything is written, with FST_COMET_INVALID_STATUS, and
// the source is released without being read. Node would otherwise drop every byte of the stream
// without a word while the source runs for nothing (and a response with nothing to write never
// even sends its head: that case fails here as a timeout).
import t from 'tap'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { build, listen, open } from './helpers.js'

interface Released { check: () => [boolean, string] }

const KINDS: Array<[string, (app: FastifyInstance, reply: FastifyReply) => [Promise<void>, Released]]> = [
  ['a generator', (app, reply) => {
    let pulled = 0
    const source = (function * () {
      for (;;) {
        pulled++
        yield 'message'
      }
    }())
    return [reply.comet(source, 'cb'), { check: () => [pulled === 0, `the generator was never pulled (${pulled} pulls)`] }]
  }],
  ['a source function', (app, reply) => {
    let signal: AbortSignal | undefined
    const done = reply.comet(context => {
      signal = context.signal
      return ['message']
    }, 'cb')
    return [done, { check: () => [signal === undefined || signal.aborted, 'the source function was never called, or its signal aborted'] }]
  }],
  ['a push source', (app, reply) => {
    const push = app.comet.push<string>()
    push.push('message')
    return [reply.comet(push, 'cb'), { check: () => [push.signal.aborted, "the push source's signal aborted"] }]
  }]
]

for (const status of [204, 304]) {
  for (const [kind, start] of KINDS) {
    t.test(`reply.code(${status}) before reply.comet() with ${kind}: refused, source released`, { timeout: 5000 }, async t => {
      const { app } = await build(t, { padding: 0 })
      let thrown: { code?: string } | undefined
      let released: Released | undefined
      app.get('/comet', (request, reply) => {
        reply.code(status)
        try {
          const [done, check] = start(app, reply)
          released = check
          return done
        } catch (err) {
          thrown = err as { code?: string }
          throw err
        }
      })
      // A real socket: a bodiless response is complete for the client as soon as its head arrives.
      const client = await open(`${await listen(app)}/comet`)
      await client.ended
      t.equal(thrown?.code, 'FST_COMET_INVALID_STATUS', 'reply.comet() threw FST_COMET_INVALID_STATUS')
      t.equal(client.res.statusCode, 500, 'answered with a 500')
      t.equal(client.res.headers['content-type'], 'application/json; charset=utf-8', 'the error response, not a comet document')
      t.match(client.body(), '"code":"FST_COMET_INVALID_STATUS"', 'which names the error')
      if (released !== undefined) t.ok(...released.check())
    })
  }
}
