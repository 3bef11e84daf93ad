// HTTP/2 has no connection-specific headers: Node refuses to send a response that carries one.
// When a hook sets one (an application written for HTTP/1), a comet stream over HTTP/2 still
// answers the client, with a valid document or a clean error response, and shutdown settles.
import t from 'tap'
import Fastify from 'fastify'
import http2 from 'node:http2'
import { once } from 'node:events'
import fastifyComet from '../lib/index.js'
import { messages } from './helpers.js'

const HOP_BY_HOP: Array<[string, string]> = [
  ['keep-alive', 'timeout=5'],
  ['transfer-encoding', 'chunked'],
  ['connection', 'keep-alive'],
  ['upgrade', 'websocket'],
  ['proxy-connection', 'keep-alive']
]

for (const [name, value] of HOP_BY_HOP) {
  t.test(`HTTP/2: a ${name} header set by a hook still gets the client an answer`, { timeout: 10000 }, async t => {
    // On Node < 24, Fastify closes HTTP/2 sessions at shutdown only with forceCloseConnections;
    // without it, close() waits for the client to hang up, whatever the plugin does.
    const app = Fastify({ http2: true, forceCloseConnections: true })
    await app.register(fastifyComet, { padding: 0 })
    const channel = app.comet.channel<string>()
    app.addHook('onRequest', async (request, reply) => { reply.header(name, value) })
    let handled!: () => void
    const handlerRan = new Promise<void>(resolve => { handled = resolve })
    app.get('/comet', (request, reply) => {
      try {
        return reply.comet(channel, 'cb')
      } finally {
        handled()
      }
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const session = http2.connect(`http://127.0.0.1:${port}`)
    t.teardown(() => { session.destroy() })
    session.on('error', () => {})
    const stream = session.request({ ':path': '/comet' })
    stream.setEncoding('utf8')
    let body = ''
    stream.on('data', (chunk: string) => { body += chunk })
    stream.on('error', () => {})
    let status: number | undefined
    stream.on('response', headers => { status = Number(headers[':status']) })
    const streamClosed = once(stream, 'close')
    await handlerRan
    channel.publish('one')

    // Shutdown ends whatever is open; it must neither throw nor hang (a hang fails as a timeout).
    await app.close()
    t.pass('app.close() settled')
    await streamClosed
    t.ok(status !== undefined, `the client got a response (${status ?? 'none'}, stream reset code ${stream.rstCode})`)
    if (status === 200) {
      t.same(messages(body, 'cb'), ['one'], 'a valid comet document')
    } else {
      t.ok(status !== undefined && status >= 500, 'or a clean error response')
      t.notOk(body.includes('<script'), 'with no comet scripts in it')
    }
  })
}
