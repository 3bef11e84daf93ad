// Comet requests pipelined on one HTTP/1.1 connection: only the first response owns the socket,
// the others wait in Node's queue. When the client goes away, every one of those streams ends:
// its source is released and its channel subscription removed, whether or not its response ever
// reached the socket.
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { build, listen, turns } from './helpers.js'

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
  t.equal(channel.size, PIPELINED, 'every pipelined request subscribed')
  channel.publish('hello')
  while (!Buffer.concat(received).toString().includes('0,"hello",')) await once(socket, 'data')
  t.match(Buffer.concat(received).toString(), /^HTTP\/1\.1 200 /, 'the first response is streaming')

  socket.destroy()
  await Promise.all(requestsClosed)
  await turns(5) // whatever the plugin does on those events has run
  t.equal(signals.filter(signal => signal.aborted).length, PIPELINED, "every source's signal aborted")
  t.equal(channel.size, 0, 'no stream is still subscribed to the channel')
})
