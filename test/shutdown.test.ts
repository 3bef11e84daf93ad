// app.close() ends every open stream cleanly: close() settles instead of waiting forever for
// responses that never finish, every source is released, and every client sees a proper end.
// Without the plugin's preClose hook these tests hang, and tap's timeout fails them.
import t from 'tap'
import { EventEmitter, on, once } from 'node:events'
import { build, listen, open, deferred, withoutHelper, type OpenStream } from './helpers.js'

const STREAMS = 200

t.test(`app.close() ends ${STREAMS} open streams cleanly and releases every source`, { timeout: 20000 }, async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const ticks = new EventEmitter()
  ticks.setMaxListeners(0)
  let subscribed = 0
  const everySubscribed = deferred()
  ticks.on('newListener', () => { if (++subscribed === STREAMS) everySubscribed.resolve() })
  let finalized = 0
  const everyFinalized = deferred()
  app.get('/comet', (request, reply) => reply.comet(async function * ({ signal }) {
    try {
      for await (const [tick] of on(ticks, 'tick', { signal })) yield tick
    } finally {
      if (++finalized === STREAMS) everyFinalized.resolve()
    }
  }, 'cb'))

  const url = `${await listen(app)}/comet`
  const streams: OpenStream[] = await Promise.all(Array.from({ length: STREAMS }, () => open(url, { agent: false })))
  await everySubscribed.promise
  ticks.emit('tick', 'before shutdown')
  await Promise.all(streams.map(stream => stream.waitFor('0,"before shutdown",')))

  await app.close()
  t.pass('app.close() settled')
  await everyFinalized.promise
  t.equal(finalized, STREAMS, "every source's finally block ran")
  t.equal(ticks.listenerCount('tick'), 0, 'no source is still subscribed')
  const ends = await Promise.allSettled(streams.map(stream => stream.ended))
  t.equal(ends.filter(end => end.status === 'fulfilled').length, STREAMS, "every client's response ended with the terminating chunk")
  t.ok(streams.every(stream => stream.body().replace(/ nonce="[^"]*"/g, '').endsWith('0,"before shutdown",]);</script><script>__fastifyComet([2,"reconnect",{"delay":"backoff"},]);</script>')), 'each body is whole, and asks for a later reconnect')
  const ended = logs.filter(line => line.msg === 'comet stream ended')
  t.equal(ended.length, STREAMS, 'one end line per stream')
  t.ok(ended.every(line => line.reason === 'shutdown'), "each with reason 'shutdown'")
  t.notOk(logs.some(line => line.level >= 50), 'nothing logged as an error')
})

t.test('a comet stream that starts while the server closes ends at once', { timeout: 10000 }, async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const never = new EventEmitter()
  const gate = new EventEmitter()
  let bodyRan = false
  let sourceSignal: AbortSignal | undefined
  const handlerWaiting = deferred()
  app.get('/comet', async (request, reply) => {
    const released = once(gate, 'open')
    handlerWaiting.resolve()
    await released
    await reply.comet(async function * ({ signal }) {
      sourceSignal = signal
      bodyRan = true
      for await (const [tick] of on(never, 'tick', { signal })) yield tick
    }, 'cb')
  })
  // Registered after the plugin, so it runs once the plugin's own preClose hook has ended the
  // streams that were open: the handler calls reply.comet() only now, during the shutdown.
  app.addHook('preClose', async () => { gate.emit('open') })

  const opening = open(`${await listen(app)}/comet`)
  await handlerWaiting.promise
  await app.close()
  t.pass('app.close() settled')
  const stream = await opening
  await stream.ended
  t.equal(withoutHelper(stream.body()).replace(/ nonce="[^"]*"/g, ''), '<html><body><script>__fastifyComet([2,"reconnect",{"delay":"backoff"},]);</script>', 'a clean document: no message, a later reconnect')
  t.equal(bodyRan, false, 'the source was never started')
  t.equal(sourceSignal, undefined, 'so it never saw its signal either')
  const ended = logs.filter(line => line.msg === 'comet stream ended')
  t.equal(ended.length, 1, 'one end line')
  t.match(ended[0], { reason: 'shutdown', messages: 0 })
})

t.test('a stream that starts during shutdown never calls its source function, so nothing fails', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const gate = new EventEmitter()
  const handlerWaiting = deferred()
  app.get('/comet', async (request, reply) => {
    const released = once(gate, 'open')
    handlerWaiting.resolve()
    await released
    await reply.comet(() => { throw new Error('no source during shutdown') }, 'cb')
  })
  app.addHook('preClose', async () => { gate.emit('open') })
  const opening = open(`${await listen(app)}/comet`)
  await handlerWaiting.promise
  await app.close()
  const stream = await opening
  await stream.ended
  const ended = logs.filter(line => line.msg === 'comet stream ended')
  t.equal(ended.length, 1, 'ended once')
  t.match(ended[0], { reason: 'shutdown' })
  t.equal(logs.filter(line => line.level >= 50).length, 0, 'the throwing source function was never called')
})
