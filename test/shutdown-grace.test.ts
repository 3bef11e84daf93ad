// app.close() settles promptly even while a client has stopped reading: a stream whose end cannot
// be flushed (the socket is full and the client reads nothing) is destroyed after a short grace
// period instead of holding the shutdown until the client leaves. A hang fails as a timeout.
// (HTTP/1 settles today: on Node 20, server.close() destroys "idle" connections, and a connection
// whose request was fully read counts as idle, streaming response or not. HTTP/2 has no such shortcut.)
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import http from 'node:http'
import http2 from 'node:http2'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { once } from 'node:events'
import fastifyComet from '../lib/index.js'
import { build, firstBlockedWrite, type LogLine } from './helpers.js'
import type { CometPush, CometSource, CometSourceContext } from '../types/index.js'

const PAYLOAD = 'x'.repeat(65536)

/** A source that yields big messages until its signal aborts, and a way to know when the socket is full. */
function filling (): { source: CometSource, watch: (raw: unknown) => void, blocked: Promise<void>, finished: Promise<void>, signal: () => AbortSignal | undefined } {
  let markBlocked!: () => void
  const blocked = new Promise<void>(resolve => { markBlocked = resolve })
  let markFinished!: () => void
  const finished = new Promise<void>(resolve => { markFinished = resolve })
  let seen: AbortSignal | undefined
  async function * source ({ signal }: CometSourceContext): AsyncGenerator<unknown> {
    seen = signal
    try {
      for (let i = 0; !signal.aborted; i++) yield { i, payload: PAYLOAD }
    } finally {
      markFinished()
    }
  }
  // Http2ServerResponse.write() returns false under flow control just as ServerResponse's does.
  const watch = (raw: unknown): void => { firstBlockedWrite(raw as ServerResponse).then(markBlocked, markBlocked) }
  return { source, watch, blocked, finished, signal: () => seen }
}

/** `app` with the plugin and a /comet route that fills its socket; listening, with its port. */
async function serveFilling (app: FastifyInstance): Promise<{ route: ReturnType<typeof filling>, port: number }> {
  await app.register(fastifyComet, { padding: 0, maxBytes: Infinity })
  const route = filling()
  app.get('/comet', (request, reply) => {
    route.watch(reply.raw)
    return reply.comet(route.source, 'cb')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { route, port: (app.server.address() as { port: number }).port }
}

async function closeWhileBlocked (t: Test, app: FastifyInstance, route: ReturnType<typeof filling>): Promise<void> {
  await route.blocked
  t.pass('the server side is full')
  await app.close()
  t.pass('app.close() settled with the client still connected and not reading')
  t.ok(route.signal()?.aborted, "the source's signal aborted")
  await route.finished
  t.pass("the source's finally ran")
}

t.test('HTTP/1: app.close() settles while a client has stopped reading', { timeout: 15000 }, async t => {
  const app = Fastify()
  const { route, port } = await serveFilling(app)
  const req = http.get({ host: '127.0.0.1', port, path: '/comet', agent: false })
  req.on('error', () => {})
  req.on('response', res => {
    res.on('error', () => {})
    res.pause() // reads nothing from here on
  })
  t.teardown(() => { req.destroy() })
  await closeWhileBlocked(t, app, route)
})

t.test('HTTP/2: app.close() settles while a client has stopped reading', { timeout: 15000 }, async t => {
  // On Node < 24, Fastify closes HTTP/2 sessions at shutdown only with forceCloseConnections;
  // without it, close() waits for every client session to hang up, whatever the plugin does.
  const app = Fastify({ http2: true, forceCloseConnections: true })
  const { route, port } = await serveFilling(app as unknown as FastifyInstance)
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  t.teardown(() => { session.destroy() })
  const stream = session.request({ ':path': '/comet' })
  stream.on('error', () => {})
  stream.pause() // flow control stops the server once the windows are full
  await closeWhileBlocked(t, app as unknown as FastifyInstance, route)
})

/** A push-fed /comet route on a listening app, and an open client request to it with its response. */
async function pushStream (t: Test): Promise<{ app: FastifyInstance, logs: LogLine[], out: CometPush<string>, raw: ServerResponse, req: http.ClientRequest, res: http.IncomingMessage }> {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const out = app.comet.push<string>()
  let raw!: ServerResponse
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    return reply.comet(out, 'cb')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const req = http.get({ host: '127.0.0.1', port, path: '/comet', agent: false })
  req.on('error', () => {})
  const res = await new Promise<http.IncomingMessage>(resolve => req.on('response', resolve))
  res.on('error', () => {})
  return { app, logs, out, raw, req, res }
}

t.test('HTTP/1: a stream that ends while its client has stopped reading loses its connection after the grace period', { timeout: 15000 }, async t => {
  const { logs, out, raw, res } = await pushStream(t)
  res.pause()
  // Fill the socket for real: push while the stream still takes more, one turn at a time.
  while (raw.writableLength < 4 * 1024 * 1024 && out.push(PAYLOAD)) await new Promise(setImmediate)
  const socketClosed = once(raw.socket as Socket, 'close')
  out.end()
  await socketClosed
  t.match(logs.find(line => /comet response dropped/.test(line.msg)), { level: 20, graceMs: 2000 }, 'the end could not be flushed, so the connection was dropped')
})

t.test('end() cannot throw: a response whose end() throws is dropped, and close() settles', async t => {
  const { app, logs, raw } = await pushStream(t)
  raw.end = () => { throw new Error('end failed') }
  const closed = once(raw.socket as Socket, 'close')
  await app.close()
  await closed
  t.pass('close() settled and the connection was dropped')
  t.match(logs.find(line => line.level === 50), { msg: /could not be ended/, err: { message: 'end failed' } }, 'logged as an error')
})
