// A client that goes away releases everything: the source's signal fires, its finally blocks run,
// the listeners the plugin added are gone, and reply.comet() resolves.
import t from 'tap'
import { EventEmitter, on, once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { build, listen, open, firstBlockedWrite, countWrites, deferred } from './helpers.js'

t.test('a source blocked on an event is released by the signal when the client leaves', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const ticks = new EventEmitter()
  let signal!: AbortSignal
  const finalized = deferred()
  let settled!: Promise<void>
  let raw!: ServerResponse
  let listenersBefore = { close: 0, drain: 0 }

  app.get('/comet', (request, reply) => {
    raw = reply.raw
    listenersBefore = { close: raw.listenerCount('close'), drain: raw.listenerCount('drain') }
    settled = reply.comet(async function * ({ signal: s }) {
      signal = s
      try {
        for await (const [tick] of on(ticks, 'tick', { signal })) yield tick
      } finally {
        finalized.resolve()
      }
    }, 'cb')
    return settled
  })

  const subscribed = once(ticks, 'newListener')
  const stream = await open(`${await listen(app)}/comet`)
  await subscribed
  ticks.emit('tick', 'one')
  await stream.waitFor('0,"one",')
  t.equal(ticks.listenerCount('tick'), 1)

  stream.req.destroy()
  await once(signal, 'abort')
  t.pass('the signal fired')
  await finalized.promise
  t.pass("the source's finally block ran")
  await settled
  t.pass('reply.comet() resolved')
  t.equal(ticks.listenerCount('tick'), 0, 'the emitter has no listener left')
  t.equal(raw.listenerCount('close'), listenersBefore.close, 'no close listener left behind')
  t.equal(raw.listenerCount('drain'), listenersBefore.drain, 'no drain listener left behind')
  t.notOk(logs.some(line => line.level >= 50), 'a client leaving is not logged as an error')
})

t.test('a plain async generator is closed with return() when the client leaves', async t => {
  const { app } = await build(t, { padding: 0 })
  const next = deferred()
  const finalized = deferred()
  let settled!: Promise<void>
  let raw!: ServerResponse
  let yieldedAfterLeaving = false

  app.get('/comet', (request, reply) => {
    raw = reply.raw
    settled = reply.comet((async function * () {
      try {
        yield 'first'
        await next.promise
        yieldedAfterLeaving = true
        yield 'second'
        yield 'never pulled'
      } finally {
        finalized.resolve()
      }
    }()), 'cb')
    return settled
  })
  const stream = await open(`${await listen(app)}/comet`)
  await stream.waitFor('0,"first",')
  stream.req.destroy()
  await once(raw, 'close')
  await settled
  t.pass('reply.comet() resolved while the generator was still waiting')
  next.resolve()
  await finalized.promise
  t.ok(yieldedAfterLeaving, 'the generator was closed at its next yield')
})

t.test('a client that leaves while the server waits for drain releases the wait', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const finalized = deferred()
  let settled!: Promise<void>
  let blocked!: Promise<void>
  const payload = 'y'.repeat(8192)
  app.get('/comet', (request, reply) => {
    blocked = firstBlockedWrite(reply.raw)
    settled = reply.comet((async function * () {
      try {
        for (;;) yield payload
      } finally {
        finalized.resolve()
      }
    }()), 'cb')
    return settled
  })
  const stream = await open(`${await listen(app)}/comet`)
  stream.res.pause()
  await blocked
  stream.req.destroy()
  await settled
  await finalized.promise
  t.pass('the stream ended and the source was finalized')
  t.notOk(logs.some(line => line.level >= 50), 'nothing logged as an error')
})

t.test('a client gone before reply.comet() is called ends the stream at once', async t => {
  const { app } = await build(t, { padding: 0 })
  const clientGone = deferred()
  const cometCalled = deferred<Promise<void>>()
  let signal!: AbortSignal
  let writes = (): number => 0
  app.get('/comet', async (request, reply) => {
    reply.raw.on('close', clientGone.resolve)
    await clientGone.promise
    writes = countWrites(reply.raw)
    const settled = reply.comet(({ signal: s }) => { signal = s; return ['unsent'] }, 'cb')
    cometCalled.resolve(settled)
    await settled
  })
  const url = await listen(app)
  const http = await import('node:http')
  const req = http.get(`${url}/comet`, { agent: false })
  req.on('error', () => {})
  // Leave as soon as the request is on the wire, before the handler answers.
  req.on('socket', socket => socket.on('connect', () => setImmediate(() => req.destroy())))
  await (await cometCalled.promise)
  t.ok(signal.aborted, "the source function's signal is aborted")
  t.equal(writes(), 0, 'nothing was written to the dead response')
})

t.test('the server keeps serving after a client leaves', async t => {
  const { app } = await build(t, { padding: 0 })
  const ticks = new EventEmitter()
  app.get('/comet', (request, reply) => reply.comet(({ signal }) => on(ticks, 'tick', { signal }), 'cb'))
  app.get('/ok', async () => 'ok')
  const url = await listen(app)
  const leaving = await open(`${url}/comet`)
  leaving.req.destroy()
  const res = await fetch(`${url}/ok`)
  t.equal(await res.text(), 'ok')
})
