// An idle stream gets a heartbeat script every `heartbeat` milliseconds, so proxies do not close it
// and the shipped client sees it alive (a `beat` control message); the document announces the
// period first; a message counts as activity; nothing is written while the socket is full or after
// the end.
// Time passes in these tests by events only: a second, idle stream (the "clock") whose heartbeats
// the client counts shows that several heartbeat periods went by.
import t from 'tap'
import { EventEmitter, on } from 'node:events'
import { setInterval as every } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { ServerResponse } from 'node:http'
import { build, listen, open, messages, onWrite, firstBlockedWrite, replayDocument, withoutHelper, type OpenStream } from './helpers.js'

const BEAT = '__fastifyComet([2,"beat",0,]);'
const CLOCK_PERIOD = 20

/** The body without CSP nonces, which change on every response, and without the helper script. */
function plain (stream: OpenStream): string {
  return withoutHelper(stream.body()).replace(/<script nonce="[^"]*">/g, '<script>')
}

/** Counts the heartbeats a stream received. */
function beats (stream: OpenStream): number {
  return stream.body().split(BEAT).length - 1
}

/** The heartbeat period the document announced to the shipped client. */
function announced (stream: OpenStream): unknown {
  const { controls } = replayDocument(stream.body(), 'cb', { liveness: true })
  return controls.find(([type]) => type === 'open')?.[1]
}

/** Resolves once `stream` received `count` more heartbeats. */
function heartbeats (stream: OpenStream, count: number): Promise<void> {
  const target = beats(stream) + count
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (beats(stream) < target) return
      stream.res.removeListener('data', check)
      resolve()
    }
    stream.res.on('data', check)
    stream.ended.then(() => reject(new Error('the stream ended before its heartbeats')), reject)
    check()
  })
}

/** An idle stream with a short heartbeat on route /clock: its heartbeats measure time. */
function clockRoute (app: FastifyInstance): void {
  const never = new EventEmitter()
  app.get('/clock', (request, reply) => reply.comet(({ signal }) => on(never, 'never', { signal }), { callback: 'cb', heartbeat: CLOCK_PERIOD }))
}

/** Wraps raw.write and raw.end to record every call and whether it came after 'finish' or 'close'. */
function recordWrites (raw: ServerResponse): { all: string[], whileBlocked: string[], afterFinish: string[] } {
  const record = { all: [] as string[], whileBlocked: [] as string[], afterFinish: [] as string[] }
  let finished = false
  raw.once('finish', () => { finished = true })
  raw.once('close', () => { finished = true })
  onWrite(raw, (chunk, ok, wasBlocked) => {
    const text = String(chunk)
    record.all.push(text)
    if (wasBlocked) record.whileBlocked.push(text)
    if (finished) record.afterFinish.push(text)
  })
  return record
}

t.test('an idle stream receives heartbeat scripts (plugin-wide option)', async t => {
  const { app } = await build(t, { padding: 0, heartbeat: 30 })
  const release = new EventEmitter()
  app.get('/comet', (request, reply) => reply.comet(async function * ({ signal }) {
    yield 'hello'
    await EventEmitter.once(release, 'go', { signal })
    yield 'bye'
  }, 'cb'))
  const stream = await open(`${await listen(app)}/comet`)
  await heartbeats(stream, 3)
  t.match(plain(stream), /^<html><body><script>__fastifyComet\(\[0,"hello",\]\);<\/script>(<script>__fastifyComet\(\[2,"beat",0,\]\);<\/script>){3,}$/, 'only heartbeats after the message')
  const nonce = /^<html><body><script nonce="([^"]+)">/.exec(stream.body())![1]
  t.ok(stream.chunks.slice(2).every(chunk => chunk === `<script nonce="${nonce}">${BEAT}</script>`), 'each heartbeat is one script chunk with the response\'s nonce')
  t.same(announced(stream), { heartbeat: 30 }, 'the document announced the period first')
  release.emit('go')
  await stream.ended
  t.same(messages(stream.body(), 'cb'), ['hello', 'bye'], 'heartbeats do not disturb the messages')
})

t.test('the per-call heartbeat overrides the plugin-wide one', async t => {
  const { app } = await build(t, { padding: 0, heartbeat: 0 })
  clockRoute(app)
  const clock = await open(`${await listen(app)}/clock`)
  await heartbeats(clock, 2)
  t.pass('a stream with heartbeat: 20 under a plugin-wide heartbeat: 0 beats')
  t.same(announced(clock), { heartbeat: CLOCK_PERIOD }, 'and announces its own period')
  clock.req.destroy()
})

t.test('heartbeat 0: an idle stream gets no heartbeat at all, and announces none', async t => {
  const { app } = await build(t, { padding: 0, heartbeat: 0 })
  clockRoute(app)
  const release = new EventEmitter()
  app.get('/comet', (request, reply) => reply.comet(async function * ({ signal }) {
    await EventEmitter.once(release, 'go', { signal })
    yield 'bye'
  }, 'cb'))
  const url = await listen(app)
  const stream = await open(`${url}/comet`)
  const clock = await open(`${url}/clock`)
  await heartbeats(clock, 5) // well over five periods of the other stream's heartbeat
  release.emit('go')
  await stream.ended
  t.equal(plain(stream), '<html><body><script>__fastifyComet([0,"bye",]);</script>', 'no heartbeat in the whole body')
  t.same(announced(stream), { heartbeat: 0 }, 'the document announced heartbeat 0: the client watches only the connection\'s start')
  clock.req.destroy()
})

t.test('the default heartbeat is 20 seconds: its shared clock ticks every 5 seconds', async t => {
  const { app } = await build(t, { padding: 0 })
  const delays: number[] = []
  app.get('/comet', (request, reply) => {
    const original = globalThis.setInterval
    globalThis.setInterval = function (this: unknown, ...args: Parameters<typeof original>) {
      delays.push(args[1] ?? 0)
      return original.apply(this, args)
    } as typeof original
    try {
      return reply.comet(['one'], 'cb')
    } finally {
      globalThis.setInterval = original
    }
  })
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  t.same(delays, [5000], 'one 5000 ms interval: a beat after four silent ticks')
})

t.test('no heartbeat is written while the socket is full', async t => {
  const { app } = await build(t, { padding: 0, maxBytes: Infinity, heartbeat: CLOCK_PERIOD })
  clockRoute(app)
  let writes!: ReturnType<typeof recordWrites>
  let raw!: ServerResponse
  let firstBlock!: Promise<void>
  const state = { stop: false }
  const payload = 'x'.repeat(8000)
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    writes = recordWrites(raw)
    firstBlock = firstBlockedWrite(raw)
    return reply.comet(async function * () {
      for (let i = 0; !state.stop; i++) yield { i, payload }
    }, 'cb')
  })
  const url = await listen(app)
  const stream = await open(`${url}/comet`)
  stream.res.pause()
  await firstBlock
  const clock = await open(`${url}/clock`)
  await heartbeats(clock, 10) // ten heartbeat periods of both streams
  t.ok(raw.writableNeedDrain, 'the stream is still blocked')
  t.same(writes.whileBlocked, [], 'nothing at all was written while blocked, heartbeats included')
  state.stop = true
  stream.res.resume()
  await stream.ended
  const received = messages(stream.body(), 'cb') as Array<{ i: number }>
  t.ok(received.length > 0 && received.every((message, index) => message.i === index), 'every message, in order')
  clock.req.destroy()
})

t.test('no heartbeat is written after the response ended', async t => {
  const { app } = await build(t, { padding: 0, heartbeat: CLOCK_PERIOD })
  clockRoute(app)
  let writes!: ReturnType<typeof recordWrites>
  let settled!: Promise<void>
  const release = new EventEmitter()
  app.get('/comet', (request, reply) => {
    writes = recordWrites(reply.raw)
    settled = reply.comet(async function * ({ signal }) {
      yield 'one'
      await EventEmitter.once(release, 'go', { signal })
    }, 'cb')
    return settled
  })
  const url = await listen(app)
  const stream = await open(`${url}/comet`)
  await heartbeats(stream, 1)
  release.emit('go')
  await stream.ended
  await settled
  const clock = await open(`${url}/clock`)
  await heartbeats(clock, 5)
  t.ok(writes.all.some(chunk => chunk.includes(BEAT)), 'heartbeats were written while the stream was open')
  t.same(writes.afterFinish, [], 'no write after the response finished')
  clock.req.destroy()
})

t.test('no heartbeat is written after the client left', async t => {
  const { app } = await build(t, { padding: 0, heartbeat: CLOCK_PERIOD })
  clockRoute(app)
  let writes!: ReturnType<typeof recordWrites>
  let settled!: Promise<void>
  const never = new EventEmitter()
  app.get('/comet', (request, reply) => {
    writes = recordWrites(reply.raw)
    settled = reply.comet(({ signal }) => on(never, 'tick', { signal }), 'cb')
    return settled
  })
  const url = await listen(app)
  const stream = await open(`${url}/comet`)
  await heartbeats(stream, 1)
  stream.req.destroy()
  await settled
  const clock = await open(`${url}/clock`)
  await heartbeats(clock, 5)
  t.same(writes.afterFinish, [], 'no write after the connection closed')
  clock.req.destroy()
})

t.test('a message resets the idle timer: a steady stream of messages gets no heartbeat', async t => {
  const HEARTBEAT = 300
  const COUNT = 25 // at least 25 x 20 ms = 500 ms: more than one heartbeat period in all
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(async function * ({ signal }) {
    const ticks = every(20, undefined, { signal })
    for (let i = 0; i < COUNT; i++) {
      await ticks.next()
      yield i
    }
  }, { callback: 'cb', heartbeat: HEARTBEAT }))
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  t.equal(messages(stream.body(), 'cb').length, COUNT)
  t.notOk(stream.body().includes(BEAT), 'no heartbeat between messages that come faster than the heartbeat')
})
