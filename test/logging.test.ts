// At debug level every stream logs one line when it opens and one when it ends, with why it ended
// and how much it sent; a client leaving is not worth a warning; Fastify's own request life cycle
// (onResponse hooks, "request completed") still runs for streams that end normally.
import t from 'tap'
import { EventEmitter, on } from 'node:events'
import type { FastifyInstance } from 'fastify'
import type { CometReplyOptions, CometSource } from '../types/index.js'
import { build, listen, open, deferred, logged, messages, type LogLine } from './helpers.js'

function linesOf (logs: LogLine[], msg: string): LogLine[] {
  return logs.filter(line => line.msg === msg)
}

t.test("'comet stream opened' names the callback and the kind of source", async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const sources: Record<string, () => CometSource> = {
    function: () => () => ['a'],
    'async-iterable': () => (async function * () { yield 'a' }()),
    iterable: () => ['a']
  }
  app.get<{ Params: { kind: string } }>('/:kind', (request, reply) => reply.comet(sources[request.params.kind](), `on_${request.params.kind.replace('-', '_')}`))
  const url = await listen(app)
  for (const kind of Object.keys(sources)) {
    const stream = await open(`${url}/${kind}`)
    await stream.ended
    const opened = linesOf(logs, 'comet stream opened')
    t.equal(opened.length, 1, `${kind}: one line`)
    t.match(opened[0], { level: 20, callback: `on_${kind.replace('-', '_')}`, source: kind }, kind)
    t.type(opened[0].reqId, 'string', 'in the request\'s log context')
    logs.length = 0
  }
})

interface Case {
  reason: string
  /** Whether the response ended from the server side, so its body is all that was written. */
  whole: boolean
  options?: Omit<CometReplyOptions, 'callback'>
  source: (ticks: EventEmitter) => CometSource
  /** What ends the stream once its first message arrived. */
  end?: (ctx: { app: FastifyInstance, destroy: () => void, ticks: EventEmitter }) => Promise<void> | void
}

const endless = (ticks: EventEmitter): CometSource => async function * ({ signal }) {
  yield 'first'
  for await (const [tick] of on(ticks, 'tick', { signal })) yield tick
}

const CASES: Case[] = [
  { reason: 'done', whole: true, source: ticks => async function * ({ signal }) { yield 'first'; await EventEmitter.once(ticks, 'end', { signal }); yield 'é last' }, end: ({ ticks }) => { ticks.emit('end') } },
  { reason: 'client-gone', whole: false, source: endless, end: ({ destroy }) => destroy() },
  { reason: 'error', whole: true, source: ticks => async function * ({ signal }) { yield 'first'; await EventEmitter.once(ticks, 'end', { signal }); throw new Error('boom') }, end: ({ ticks }) => { ticks.emit('end') } },
  { reason: 'shutdown', whole: true, source: endless, end: ({ app }) => app.close() },
  { reason: 'max-bytes', whole: true, options: { maxBytes: 2000 }, source: () => (async function * () { yield 'first'; for (let i = 0; ; i++) yield `${i} ${'m'.repeat(100)}` }()) },
  { reason: 'max-duration', whole: true, options: { maxDuration: 50 }, source: endless }
]

for (const { reason, whole, options, source, end } of CASES) {
  t.test(`one 'comet stream ended' line with reason '${reason}'`, async t => {
    const { app, logs } = await build(t, { padding: 100 })
    const ticks = new EventEmitter()
    let settled!: Promise<void>
    app.get('/comet', (request, reply) => {
      settled = reply.comet(source(ticks), { callback: 'cb', ...options })
      return settled
    })
    const stream = await open(`${await listen(app)}/comet`)
    await stream.waitFor('0,"first",')
    await end?.({ app, destroy: () => stream.req.destroy(), ticks })
    await settled
    if (whole) await stream.ended
    const ended = linesOf(logs, 'comet stream ended')
    t.equal(ended.length, 1, 'exactly one end line')
    const [line] = ended
    t.match(line, { level: 20, reason, messages: Number, bytes: Number, durationMs: Number })
    t.type(line.reqId, 'string', 'in the request\'s log context')
    t.ok((line.bytes as number) > 0, 'bytes > 0')
    t.ok((line.messages as number) >= 1, `${String(line.messages)} messages`)
    t.ok((line.durationMs as number) >= 0, 'a duration')
    if (whole) {
      t.equal(line.bytes, Buffer.byteLength(stream.body()), 'bytes is the byte length of the whole body')
      t.equal(line.messages, messages(stream.body(), 'cb').length, 'messages counts the messages sent')
    }
    t.equal(logs.filter(line => line.level >= 40).length, reason === 'error' ? 1 : 0, 'warnings and errors')
    if (reason !== 'error') t.notOk(logs.some(line => line.level >= 40), 'nothing at warn level or above')
    else t.match(logs.filter(line => line.level >= 40), [{ level: 50, err: { message: 'boom' } }], 'the failure, once')
  })
}

t.test('a client that leaves produces no warning or error line', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const ticks = new EventEmitter()
  let settled!: Promise<void>
  const rawClosed = deferred()
  app.get('/comet', (request, reply) => {
    reply.raw.on('close', rawClosed.resolve)
    settled = reply.comet(endless(ticks), 'cb')
    return settled
  })
  const url = await listen(app)
  for (let i = 0; i < 3; i++) {
    const stream = await open(`${url}/comet`)
    await stream.waitFor('0,"first",')
    stream.req.destroy()
    await settled
  }
  await rawClosed.promise
  await app.close() // anything Fastify logs about those requests is written by now
  t.equal(linesOf(logs, 'comet stream ended').length, 3)
  t.same(logs.filter(line => line.level >= 40), [], 'no line at warn level or above')
})

t.test('onResponse hooks and "request completed" run for streams that end normally', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const responses: Array<{ url: string, statusCode: number }> = []
  app.addHook('onResponse', async (request, reply) => {
    responses.push({ url: request.url, statusCode: reply.statusCode })
  })
  app.get('/comet', (request, reply) => reply.comet(['one', 'two'], 'cb'))
  app.get('/rotated', (request, reply) => reply.comet((function * () { for (;;) yield 'x'.repeat(100) }()), { callback: 'cb', maxBytes: 500 }))
  const url = await listen(app)
  for (const path of ['/comet', '/rotated']) {
    logs.length = 0
    const stream = await open(`${url}${path}`)
    await stream.ended
    const { reqId } = await logged(logs, line => line.msg === 'comet stream ended')
    // Fastify runs onResponse hooks on the response's 'finish', then logs "request completed".
    const completed = await logged(logs, line => line.msg === 'request completed' && line.reqId === reqId)
    t.match(completed, { level: 30, res: { statusCode: 200 } }, `${path}: "request completed" logged`)
  }
  t.same(responses, [{ url: '/comet', statusCode: 200 }, { url: '/rotated', statusCode: 200 }], 'onResponse ran once for each')
})
