// Comet over HTTP/2 with TLS, as browsers speak it: the same document, no HTTP/1 framing headers,
// and helmet's upgrade-insecure-requests kept, since the server itself is HTTPS.
import t from 'tap'
import Fastify from 'fastify'
import http2 from 'node:http2'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import fastifyComet from '../lib/index.js'
import { messages, loneMessageSource, deferred } from './helpers.js'

// A self-signed certificate for localhost and 127.0.0.1, valid until 2126, for tests only.
const key = readFileSync(join(__dirname, 'fixtures', 'localhost.key'))
const cert = readFileSync(join(__dirname, 'fixtures', 'localhost.crt'))

t.test('a stream over HTTP/2 with TLS', async t => {
  const app = Fastify({ http2: true, https: { key, cert } })
  await app.register(fastifyComet, { padding: 0 })
  const lone = loneMessageSource()
  app.get('/comet', (request, reply) => reply.comet(lone.source(), 'cb'))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')

  const session = http2.connect(`https://localhost:${address.port}`, { ca: cert })
  t.teardown(() => { session.destroy() })
  const stream = session.request({ ':path': '/comet' })
  stream.setEncoding('utf8')
  const [headers] = await once(stream, 'response') as [http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader]
  t.equal(headers[':status'], 200)
  t.equal(headers['content-type'], 'text/html; charset=utf-8')
  for (const name of ['connection', 'keep-alive', 'transfer-encoding']) t.notOk(name in headers, `no ${name} header`)
  t.match(headers['content-security-policy'], /upgrade-insecure-requests/, 'kept on an HTTPS server')
  t.match(headers['content-security-policy'], /connect-src 'self'/)

  let body = ''
  const sawFirst = deferred()
  stream.on('data', (chunk: string) => {
    body += chunk
    if (body.includes('0,"first",')) sawFirst.resolve()
  })
  const ended = once(stream, 'end')
  await sawFirst.promise
  lone.release()
  await ended
  t.same(messages(body, 'cb'), ['first', 'second'])
})

t.test('an HTTPS server that also speaks HTTP/1 keeps upgrade-insecure-requests too', async t => {
  const app = Fastify({ http2: true, https: { allowHTTP1: true, key, cert } })
  await app.register(fastifyComet)
  app.get('/', async () => 'ok')
  const res = await app.inject('/')
  t.match(res.headers['content-security-policy'], /upgrade-insecure-requests/)
  await app.close()
})
