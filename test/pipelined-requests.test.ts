// Comet requests pipelined on one HTTP/1.1 connection: only the first response owns the socket,
// the others wait in Node's queue. A queued stream starts only once its response owns the socket:
// until then nothing is written (Node would buffer it, and stop reading the connection once that
// passes the socket's high-water mark), no source is pulled and no channel joined. When the client
// goes away, every one of those streams ends at once: its source is released and its channel
// subscription removed, whether or not its response ever reached the socket.
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { build, deferred, listen, replay } from './helpers.js'

const PIPELINED = 8

t.test(`${PIPELINED} pipelined comet requests all end when the client disconnects`, { timeout: 15000 }, async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel<string>()
  const signals: AbortSignal[] = []
  const requestsClosed: Array<Promise<unknown>> = []
  let allStarted!: () => void
  const started = new Promise<void>(resolve => { allStarted = resolve })
  app.get('/comet', (request, reply) => {
    // Node emits 'close' on every pipelined request when the socket goes, queued or not.
    requestsClosed.push(new Promise(resolve => request.raw.once('close', resolve)))
    return reply.comet(({ signal }) => {
      signals.push(signal)
      if (signals.length === PIPELINED) allStarted()
      return channel
    }, 'cb')
  })
  const { port } = new URL(await listen(app))
  const socket = net.connect(Number(port), '127.0.0.1')
  const received: Buffer[] = []
  socket.on('data', (chunk: Buffer) => received.push(chunk))
  socket.write('GET /comet HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(PIPELINED))
  await started
  t.equal(channel.size, 1, 'only the response that owns the socket joined the channel')
  channel.publish('hello')
  while (!Buffer.concat(received).toString().includes('0,"hello",')) await once(socket, 'data')
  t.match(Buffer.concat(received).toString(), /^HTTP\/1\.1 200 /, 'the first response is streaming')

  socket.destroy()
  await Promise.all(requestsClosed)
  await Promise.all(signals.map(signal => signal.aborted || once(signal, 'abort')))
  t.pass("every source's signal aborted")
  t.equal(channel.size, 0, 'no stream is still subscribed to the channel')
})

const MANY = 100

// With helmet's hooks, handlers happen to run after Node has parsed the whole pipeline; without
// them (or in any app whose handlers run sooner), a queued response that wrote its padding would
// make Node stop reading the connection, and a client that left would be noticed only at the next
// write: never, with heartbeat 0.
t.test(`${MANY} pipelined comet requests with the default padding, helmet off: all released when the client leaves`, { timeout: 15000 }, async t => {
  const { app } = await build(t, { helmet: false, heartbeat: 0 })
  const channel = app.comet.channel<string>()
  const signals: AbortSignal[] = []
  let allStarted!: () => void
  const started = new Promise<void>(resolve => { allStarted = resolve })
  app.get('/comet', (request, reply) => reply.comet(({ signal }) => {
    signals.push(signal)
    if (signals.length === MANY) allStarted()
    return channel
  }, 'cb'))
  const { port } = new URL(await listen(app))
  const socket = net.connect(Number(port), '127.0.0.1')
  socket.write('GET /comet HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(MANY))
  await started
  t.equal(channel.size, 1, 'only the response that owns the socket joined the channel')
  await once(socket, 'data') // the first response's head and padding

  socket.destroy()
  await Promise.all(signals.map(signal => signal.aborted || once(signal, 'abort')))
  t.equal(signals.filter(signal => signal.aborted).length, MANY, "every source's signal aborted")
  t.equal(channel.size, 0, 'no stream is still subscribed to the channel')
})

t.test('a queued comet response starts, whole, once the one before it has ended', async t => {
  const { app } = await build(t, { helmet: false })
  let pulled = 0
  app.get('/comet/:n', (request, reply) => {
    const { n } = request.params as { n: string }
    return reply.comet((function * () {
      pulled++
      yield `${n}a`
      yield `${n}b`
    }()), 'cb')
  })
  const { port } = new URL(await listen(app))
  const socket = net.connect(Number(port), '127.0.0.1')
  const received: Buffer[] = []
  socket.on('data', (chunk: Buffer) => received.push(chunk))
  socket.write('GET /comet/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /comet/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /comet/3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await once(socket, 'end')
  const text = Buffer.concat(received).toString()
  const responses = text.split(/(?=HTTP\/1\.1 200 OK\r\n)/)
  t.equal(responses.length, 3, 'three responses')
  t.equal(pulled, 3, 'each source was pulled')
  t.same(responses.map(response => replay(response.slice(response.indexOf('\r\n\r\n') + 4).replace(/\r\n[0-9a-f]+\r\n/g, ''), 'cb').map(args => args[0])),
    [['1a', '1b'], ['2a', '2b'], ['3a', '3b']], 'each document whole, in order')
})

t.test('a queued comet response still tells its client to reconnect when the server shuts down', async t => {
  const { app, logs } = await build(t, { helmet: false })
  const channel = app.comet.channel<string>()
  let handled = 0
  let bothHandled!: () => void
  const handledBoth = new Promise<void>(resolve => { bothHandled = resolve })
  app.get('/comet', (request, reply) => {
    const streaming = reply.comet(channel, 'cb')
    if (++handled === 2) bothHandled()
    return streaming
  })
  const { port } = new URL(await listen(app))
  const socket = net.connect(Number(port), '127.0.0.1')
  const received: Buffer[] = []
  socket.on('data', (chunk: Buffer) => received.push(chunk))
  socket.write('GET /comet HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2))
  await handledBoth
  t.equal(channel.size, 1, 'the queued one has not joined the channel')
  const closed = app.close()
  await once(socket, 'end')
  await closed
  const responses = Buffer.concat(received).toString().split(/(?=HTTP\/1\.1 200 OK\r\n)/)
  t.equal(responses.length, 2, 'both responses were sent')
  for (const response of responses) {
    t.match(response, /2,"reconnect",\{"delay":"backoff"\},/, 'each document ends telling its client to reconnect later')
  }
  t.same(logs.filter(line => line.msg === 'comet stream ended').map(line => line.reason), ['shutdown', 'shutdown'], 'both ended by the shutdown')
})

t.test('a pipelined comet request whose connection went before its handler ran ends at once', async t => {
  const { app } = await build(t, { helmet: false })
  const channel = app.comet.channel<string>()
  const gate = deferred()
  const secondClosed = deferred()
  const opened = deferred<AbortSignal>()
  app.get('/comet/:n', {
    // The second request waits here until its connection is gone.
    preHandler: async request => {
      if ((request.params as { n: string }).n !== '2') return
      request.raw.once('close', () => secondClosed.resolve())
      await gate.promise
    }
  }, (request, reply) => reply.comet(context => {
    if ((request.params as { n: string }).n === '2') opened.resolve(context.signal)
    return channel
  }, 'cb'))
  const { port } = new URL(await listen(app))
  const socket = net.connect(Number(port), '127.0.0.1')
  socket.write('GET /comet/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /comet/2 HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(socket, 'data')
  socket.destroy()
  await secondClosed.promise
  t.equal(channel.size, 0, 'the first stream ended with its connection')
  gate.resolve()
  const signal = await opened.promise
  await (signal.aborted || once(signal, 'abort'))
  t.pass("the second stream's source was released")
  t.equal(channel.size, 0, 'and it never joined the channel')
})
