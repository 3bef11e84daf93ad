// Comet over HTTP/2 (cleartext h2c): the same document, without HTTP/1 framing headers, written
// progressively, paused by flow control, and released when the client cancels its stream.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import http2 from 'node:http2'
import { EventEmitter, on, once } from 'node:events'
import fastifyComet from '../lib/index.js'
import { listen, messages, recordLogs, turns, loneMessageSource, deferred, type LogLine } from './helpers.js'
import type { CometSource } from '../types/index.js'

/** An h2c app with the plugin (padding 0) and a log recorder; it closes when `t` ends. */
async function buildH2 (t: Test, options: { maxBytes?: number } = {}) {
  const { logs, logger } = recordLogs()
  const app = Fastify({ http2: true, logger })
  t.teardown(() => app.close())
  await app.register(fastifyComet, { padding: 0, ...options })
  return { app, logs }
}

async function serve (t: Test, source: () => CometSource, options: { maxBytes?: number } = {}): Promise<{ url: string, logs: LogLine[], raw: () => http2.Http2ServerResponse }> {
  const { app, logs } = await buildH2(t, options)
  let raw!: http2.Http2ServerResponse
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    return reply.comet(source(), 'cb')
  })
  return { url: await listen(app), logs, raw: () => raw }
}

interface H2Stream {
  stream: http2.ClientHttp2Stream
  headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader
  body: () => string
  waitFor: (text: string) => Promise<void>
  ended: Promise<void>
}

/** A GET over its own HTTP/2 session that keeps the body as it arrives. */
async function request (t: Test, url: string): Promise<H2Stream> {
  const session = http2.connect(url)
  t.teardown(() => { session.destroy() })
  const stream = session.request({ ':path': '/comet' })
  stream.setEncoding('utf8')
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader]
  let text = ''
  const data = new EventEmitter()
  stream.on('data', (chunk: string) => {
    text += chunk
    data.emit('data')
  })
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve)
    stream.on('error', reject)
  })
  ended.catch(() => {})
  const waitFor = async (wanted: string): Promise<void> => {
    while (!text.includes(wanted)) {
      await Promise.race([once(data, 'data'), ended.then(() => { throw new Error(`ended without ${wanted}`) })])
    }
  }
  return { stream, headers, body: () => text, waitFor, ended }
}

t.test('HTTP/2: a comet document with the right headers and none of HTTP/1\'s', async t => {
  const { url, logs } = await serve(t, () => ['one', { two: 2 }])
  const { headers, body, ended } = await request(t, url)
  await ended
  t.equal(headers[':status'], 200)
  t.equal(headers['content-type'], 'text/html; charset=utf-8')
  t.equal(headers['x-accel-buffering'], 'no')
  for (const name of ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']) {
    t.notOk(name in headers, `no ${name} header`)
  }
  t.same(messages(body(), 'cb'), ['one', { two: 2 }])
  t.notOk(logs.some(line => line.level >= 40), 'nothing logged as a warning or an error')
  t.match(logs.filter(line => line.msg === 'comet stream ended'), [{ reason: 'done' }])
})

t.test('HTTP/2: a lone message arrives before the source yields the next', async t => {
  const lone = loneMessageSource()
  const { url } = await serve(t, lone.source)
  const client = await request(t, url)
  await client.waitFor('0,"first",')
  t.notOk(client.body().includes('second'), 'the second message was not produced yet')
  lone.release()
  await client.ended
  t.same(messages(client.body(), 'cb'), ['first', 'second'])
})

t.test('HTTP/2: a paused client stream stops the source until it reads again', async t => {
  const COUNT = 3000
  const payload = 'x'.repeat(1000) // 3 MB: far beyond HTTP/2's flow-control windows
  let pulled = 0
  const firstBlock = deferred()
  const { url, raw } = await serve(t, () => (async function * () {
    for (let i = 0; i < COUNT; i++) {
      pulled++
      yield { i, payload }
    }
  }()), { maxBytes: Infinity })
  const client = await request(t, url)
  client.stream.pause()
  const response = raw()
  const write = response.write
  response.write = function (this: http2.Http2ServerResponse, ...args: Parameters<typeof write>) {
    const ok = write.apply(this, args)
    if (!ok) firstBlock.resolve()
    return ok
  } as typeof write
  await firstBlock.promise
  await turns(50)
  const pulledAtBlock = pulled
  t.ok(pulledAtBlock < COUNT, `the source stopped at ${pulledAtBlock} of ${COUNT} messages`)
  await turns(200)
  t.equal(pulled, pulledAtBlock, 'nothing more was pulled while the client was not reading')
  client.stream.resume()
  await client.ended
  const received = messages(client.body(), 'cb') as Array<{ i: number }>
  t.equal(received.length, COUNT, 'every message arrived after resume')
  t.ok(received.every((message, index) => message.i === index), 'in order, none lost or repeated')
})

t.test('HTTP/2: a client that cancels its stream releases the source', async t => {
  const ticks = new EventEmitter()
  let signal!: AbortSignal
  const finalized = deferred()
  const { url, logs } = await serve(t, () => async function * ({ signal: s }) {
    signal = s
    try {
      for await (const [tick] of on(ticks, 'tick', { signal: s })) yield tick
    } finally {
      finalized.resolve()
    }
  })
  const client = await request(t, url)
  ticks.emit('tick', 'one')
  await client.waitFor('0,"one",')
  client.stream.close(http2.constants.NGHTTP2_CANCEL)
  await once(signal, 'abort')
  t.pass("the source's signal fired")
  await finalized.promise
  t.pass("the source's finally block ran")
  t.equal(ticks.listenerCount('tick'), 0, 'no listener left')
  t.match(logs.filter(line => line.msg === 'comet stream ended'), [{ reason: 'client-gone' }])
  t.notOk(logs.some(line => line.level >= 40), 'a cancelled stream is not a warning or an error')
})

t.test('HTTP/2: a client gone before reply.comet() is called ends the stream at once', { timeout: 5000 }, async t => {
  const { app, logs } = await buildH2(t)
  const clientGone = deferred()
  const cometCalled = deferred<Promise<void>>()
  let signal!: AbortSignal
  app.get('/comet', async (request, reply) => {
    reply.raw.on('close', clientGone.resolve)
    await clientGone.promise
    const settled = reply.comet(({ signal: s }) => {
      signal = s
      return on(new EventEmitter(), 'never', { signal: s })
    }, 'cb')
    cometCalled.resolve(settled)
    await settled
  })
  const session = http2.connect(await listen(app))
  t.teardown(() => { session.destroy() })
  const stream = session.request({ ':path': '/comet' })
  stream.on('error', () => {})
  // Cancel once the request reached the server, before the handler answers.
  await once(app.server, 'stream')
  stream.close(http2.constants.NGHTTP2_CANCEL)
  await (await cometCalled.promise)
  t.pass('reply.comet() resolved')
  t.ok(signal.aborted, "the source function's signal is aborted")
  t.match(logs.filter(line => line.msg === 'comet stream ended'), [{ reason: 'client-gone' }])
})
