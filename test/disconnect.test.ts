// A client that goes away releases everything: the source's signal fires, its finally blocks run,
// the listeners the plugin added are gone, and reply.comet() resolves.
import t from 'tap'
import { EventEmitter, on, once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { build, listen, open, firstBlockedWrite, countWrites } from './helpers.js'

t.test('a source blocked on an event is released by the signal when the client leaves', async t => {
  const { app, logs } = await build({ padding: 0 })
  t.teardown(() => app.close())
  const ticks = new EventEmitter()
  let signal!: AbortSignal
  let finalized!: () => void
  const sourceFinalized = new Promise<void>(resolve => { finalized = resolve })
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
        finalized()
      }
    }, 'cb')
    return settled
  })

  const subscribed = once(ticks, 'newListener')
  const stream = await open(`${await listen(app)}/comet`)
  await subscribed
  ticks.emit('tick', 'one')
  await stream.waitFor('cb("one")')
  t.equal(ticks.listenerCount('tick'), 1)

  stream.req.destroy()
  await once(signal, 'abort')
  t.pass('the signal fired')
  await sourceFinalized
  t.pass("the source's finally block ran")
  await settled
  t.pass('reply.comet() resolved')
  t.equal(ticks.listenerCount('tick'), 0, 'the emitter has no listener left')
  t.equal(raw.listenerCount('close'), listenersBefore.close, 'no close listener left behind')
  t.equal(raw.listenerCount('drain'), listenersBefore.drain, 'no drain listener left behind')
  t.notOk(logs.some(line => line.level >= 50), 'a client leaving is not logged as an error')
})

t.test('a plain async generator is closed with return() when the client leaves', async t => {
  const { app } = await build({ padding: 0 })
  t.teardown(() => app.close())
  let release!: () => void
  const next = new Promise<void>(resolve => { release = resolve })
  let finalized!: () => void
  const sourceFinalized = new Promise<void>(resolve => { finalized = resolve })
  let settled!: Promise<void>
  let raw!: ServerResponse
  let yieldedAfterLeaving = false

  app.get('/comet', (request, reply) => {
    raw = reply.raw
    settled = reply.comet((async function * () {
      try {
        yield 'first'
        await next
        yieldedAfterLeaving = true
        yield 'second'
        yield 'never pulled'
      } finally {
        finalized()
      }
    }()), 'cb')
    return settled
  })
  const stream = await open(`${await listen(app)}/comet`)
  await stream.waitFor('cb("first")')
  stream.req.destroy()
  await once(raw, 'close')
  await settled
  t.pass('reply.comet() resolved while the generator was still waiting')
  release()
  await sourceFinalized
  t.ok(yieldedAfterLeaving, 'the generator was closed at its next yield')
})

t.test('a client that leaves while the server waits for drain releases the wait', async t => {
  const { app, logs } = await build({ padding: 0 })
  t.teardown(() => app.close())
  let finalized!: () => void
  const sourceFinalized = new Promise<void>(resolve => { finalized = resolve })
  let settled!: Promise<void>
  let blocked!: Promise<void>
  const payload = 'y'.repeat(8192)
  app.get('/comet', (request, reply) => {
    blocked = firstBlockedWrite(reply.raw)
    settled = reply.comet((async function * () {
      try {
        for (;;) yield payload
      } finally {
        finalized()
      }
    }()), 'cb')
    return settled
  })
  const stream = await open(`${await listen(app)}/comet`)
  stream.res.pause()
  await blocked
  stream.req.destroy()
  await settled
  await sourceFinalized
  t.pass('the stream ended and the source was finalized')
  t.notOk(logs.some(line => line.level >= 50), 'nothing logged as an error')
})

t.test('a client gone before reply.comet() is called ends the stream at once', async t => {
  const { app } = await build({ padding: 0 })
  t.teardown(() => app.close())
  let aborted!: () => void
  const clientGone = new Promise<void>(resolve => { aborted = resolve })
  let called!: (settled: Promise<void>) => void
  const cometCalled = new Promise<Promise<void>>(resolve => { called = resolve })
  let signal!: AbortSignal
  let writes = (): number => 0
  app.get('/comet', async (request, reply) => {
    reply.raw.on('close', aborted)
    await clientGone
    writes = countWrites(reply.raw)
    const settled = reply.comet(({ signal: s }) => { signal = s; return ['unsent'] }, 'cb')
    called(settled)
    await settled
  })
  const url = await listen(app)
  const http = await import('node:http')
  const req = http.get(`${url}/comet`, { agent: false })
  req.on('error', () => {})
  // Leave as soon as the request is on the wire, before the handler answers.
  req.on('socket', socket => socket.on('connect', () => setImmediate(() => req.destroy())))
  await (await cometCalled)
  t.ok(signal.aborted, "the source function's signal is aborted")
  t.equal(writes(), 0, 'nothing was written to the dead response')
})

t.test('the server keeps serving after a client leaves', async t => {
  const { app } = await build({ padding: 0 })
  t.teardown(() => app.close())
  const ticks = new EventEmitter()
  app.get('/comet', (request, reply) => reply.comet(({ signal }) => on(ticks, 'tick', { signal }), 'cb'))
  app.get('/ok', async () => 'ok')
  const url = await listen(app)
  const leaving = await open(`${url}/comet`)
  leaving.req.destroy()
  const res = await fetch(`${url}/ok`)
  t.equal(await res.text(), 'ok')
})
