// A forever iframe's document grows with every message, so a stream ends after `maxBytes` (after
// the message that crosses the limit) or after `maxDuration`, and the client reconnects with a
// fresh document. Either way the body ends cleanly and the source is released.
import t, { type Test } from 'tap'
import { EventEmitter, on } from 'node:events'
import type { FastifyInstance } from 'fastify'
import type { CometReplyOptions } from '../types/index.js'
import { build, listen, open, messages, deferred, type LogLine } from './helpers.js'

const PAGE = '<html><body>'
const SCRIPT = /<script(?: nonce="[^"]*")?>[\s\S]*?<\/script>/g

/** An endless source of numbered messages of about `size` bytes, on /comet; reports its finally. */
function endlessRoute (app: FastifyInstance, size: number, options: Omit<CometReplyOptions, 'callback'> = {}): { pulled: () => number, finalized: Promise<void> } {
  let pulled = 0
  const finalized = deferred()
  app.get('/comet', (request, reply) => reply.comet(async function * () {
    try {
      for (let i = 0; ; i++) {
        pulled++
        yield { i, fill: 'f'.repeat(size - 40) }
      }
    } finally {
      finalized.resolve()
    }
  }, { callback: 'cb', ...options }))
  return { pulled: () => pulled, finalized: finalized.promise }
}

/**
 * Checks a body cut by maxBytes: it ends after the script that crossed the limit (counting every
 * byte written, the page included), not one script later, and its messages are 0, 1, 2, ...
 */
function assertRotated (t: Test, body: string, maxBytes: number): void {
  const bytes = Buffer.byteLength(body)
  const scripts = body.match(SCRIPT) ?? []
  const last = scripts[scripts.length - 1] ?? ''
  t.ok(body.endsWith(last) && scripts.length > 1, 'the body ends with a whole script')
  t.ok(bytes >= maxBytes, `${bytes} bytes reach the limit of ${maxBytes}`)
  t.ok(bytes - Buffer.byteLength(last) < maxBytes, 'the body ends with the message that crossed the limit')
  const received = messages(body, 'cb') as Array<{ i: number }>
  t.ok(received.every((message, index) => message.i === index), `a prefix of the source (${received.length} messages)`)
}

function endLines (logs: LogLine[]): LogLine[] {
  return logs.filter(line => line.msg === 'comet stream ended')
}

t.test('maxBytes per call: the stream ends after the message that crosses the limit', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const source = endlessRoute(app, 100, { maxBytes: 1000 })
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  t.ok(stream.body().startsWith(PAGE))
  const scriptBytes = Buffer.byteLength((stream.body().match(SCRIPT) ?? []).join(''))
  t.ok(scriptBytes >= 1000 - PAGE.length, `${scriptBytes} bytes of scripts`)
  assertRotated(t, stream.body(), 1000)
  await source.finalized
  t.pass("the source's finally block ran")
  t.same(endLines(logs).map(line => line.reason), ['max-bytes'])
})

t.test('maxBytes plugin-wide, with padding: the padding counts towards the limit', async t => {
  const { app, logs } = await build(t, { padding: 600, maxBytes: 2000 })
  const source = endlessRoute(app, 100)
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  t.ok(stream.body().startsWith(' '.repeat(600) + PAGE), 'the padding came first')
  assertRotated(t, stream.body(), 2000)
  await source.finalized
  t.same(endLines(logs).map(line => line.reason), ['max-bytes'])
})

t.test('maxBytes defaults to 8 MiB', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const source = endlessRoute(app, 10000)
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  assertRotated(t, stream.body(), 8388608)
  await source.finalized
  t.same(endLines(logs).map(line => line.reason), ['max-bytes'])
})

t.test('maxBytes: Infinity never rotates', async t => {
  const { app, logs } = await build(t, { padding: 0, maxBytes: 1000 })
  app.get('/comet', (request, reply) => reply.comet(async function * () {
    for (let i = 0; i < 300; i++) yield { i, fill: 'f'.repeat(1000) } // about 300 KB
  }, { callback: 'cb', maxBytes: Infinity }))
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  t.equal(messages(stream.body(), 'cb').length, 300, 'every message arrived')
  t.same(endLines(logs).map(line => line.reason), ['done'])
})

t.test('invalid maxBytes values are rejected with FST_COMET_INVALID_OPTION', async t => {
  const invalid: unknown[] = [0, -1, 1.5, NaN, -Infinity, '1000', null, Number.MAX_SAFE_INTEGER + 1]
  for (const maxBytes of invalid) {
    await t.rejects(build(t, { maxBytes } as never), { code: 'FST_COMET_INVALID_OPTION' }, `plugin-wide maxBytes ${String(maxBytes)}`)
  }
  const { app } = await build(t, { padding: 0 })
  app.get<{ Querystring: { v: string } }>('/comet', (request, reply) => reply.comet(['unsent'], { callback: 'cb', maxBytes: JSON.parse(request.query.v) }))
  const url = await listen(app)
  for (const value of ['0', '-1', '1.5', '"1000"', 'null']) {
    const res = await fetch(`${url}/comet?v=${encodeURIComponent(value)}`)
    t.equal(res.status, 500, `per-call maxBytes ${value}`)
    t.match(await res.json(), { code: 'FST_COMET_INVALID_OPTION' })
  }
})

t.test('maxBytes at or below the padding is rejected: every stream would end after one message', async t => {
  for (const [padding, maxBytes] of [[1000, 1000], [1000, 10]]) {
    await t.rejects(build(t, { padding, maxBytes }), { code: 'FST_COMET_INVALID_OPTION', message: /larger than padding/ })
  }
  const { app } = await build(t, { padding: 100 })
  app.get('/comet', (request, reply) => reply.comet(['unsent'], { callback: 'cb', maxBytes: 50 }))
  const res = await app.inject('/comet')
  t.equal(res.statusCode, 500)
  t.match(res.json(), { code: 'FST_COMET_INVALID_OPTION' })
})

t.test('maxDuration ends an endless stream cleanly', async t => {
  for (const where of ['per call', 'plugin-wide']) {
    t.test(where, async t => {
      const { app, logs } = await build(t, where === 'plugin-wide' ? { padding: 0, maxDuration: 100 } : { padding: 0 })
      const never = new EventEmitter()
      const finalized = deferred()
      app.get('/comet', (request, reply) => reply.comet(async function * ({ signal }) {
        try {
          yield 'first'
          for await (const [tick] of on(never, 'tick', { signal })) yield tick
        } finally {
          finalized.resolve()
        }
      }, where === 'plugin-wide' ? 'cb' : { callback: 'cb', maxDuration: 100 }))
      const stream = await open(`${await listen(app)}/comet`)
      await stream.ended
      t.pass("the client's response ended")
      t.same(messages(stream.body(), 'cb'), ['first'])
      await finalized.promise
      t.pass("the source's finally block ran")
      t.match(endLines(logs), [{ reason: 'max-duration', messages: 1 }])
      t.equal(endLines(logs).length, 1, 'one end line')
    })
  }
})

t.test('maxDuration is off by default', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const never = new EventEmitter()
  app.get('/comet', (request, reply) => reply.comet(({ signal }) => on(never, 'tick', { signal }), 'cb'))
  app.get('/short', (request, reply) => reply.comet(({ signal }) => on(never, 'tick', { signal }), { callback: 'cb', maxDuration: 100 }))
  const url = await listen(app)
  const unlimited = await open(`${url}/comet`)
  const short = await open(`${url}/short`)
  await short.ended
  t.same(endLines(logs).map(line => line.reason), ['max-duration'], 'only the stream with a maxDuration ended')
  unlimited.req.destroy()
})

t.test('maxBytes counts UTF-8 bytes, not characters', async t => {
  const { app } = await build(t, { padding: 0, helmet: false })
  // The first script is 64 characters but 104 bytes ('é' is two bytes): counted in characters,
  // the second message would go out too.
  app.get('/comet', (request, reply) => reply.comet(['é'.repeat(40), '😀'.repeat(20), 'third'], { callback: 'cb', maxBytes: 100 }))
  const res = await app.inject('/comet')
  t.same(messages(res.body, 'cb'), ['é'.repeat(40)], 'the first message already crosses the limit')
})
