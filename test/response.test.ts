// The HTTP response of a comet stream over a real socket: status, headers, Fastify's hooks and
// logging, and the error path when a header cannot be written.
import t from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import type { FastifyInstance } from 'fastify'
import { build, listen, open, messages, deferred, logged, type LogLine } from './helpers.js'

const CACHE_CONTROL = 'no-cache, no-store, no-transform, must-revalidate, max-age=0'

/** A plain GET that reads the whole body. */
async function get (url: string): Promise<{ status: number, headers: http.IncomingHttpHeaders, body: string }> {
  const req = http.get(url, { agent: false })
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  res.setEncoding('utf8')
  let body = ''
  for await (const chunk of res) body += chunk
  return { status: res.statusCode ?? 0, headers: res.headers, body }
}

async function serve (t: tap.Test, setup: (app: FastifyInstance) => void): Promise<{ url: string, logs: LogLine[] }> {
  const { app, logs } = await build(t, { padding: 0 })
  setup(app)
  return { url: await listen(app), logs }
}

t.test('a plain stream: 200, comet headers, chunked, no length', async t => {
  const { url } = await serve(t, app => {
    app.get('/comet', (request, reply) => reply.comet(['a', 'b'], 'cb'))
  })
  const stream = await open(`${url}/comet`)
  await stream.ended
  const { headers } = stream.res
  t.equal(stream.res.statusCode, 200)
  t.equal(headers['content-type'], 'text/html; charset=utf-8')
  t.equal(headers['cache-control'], CACHE_CONTROL)
  t.equal(headers['x-accel-buffering'], 'no')
  t.equal(headers['transfer-encoding'], 'chunked')
  t.equal(headers['content-length'], undefined)
  t.same(messages(stream.body(), 'cb'), ['a', 'b'])
})

t.test('reply.code(202) is kept', async t => {
  const { url } = await serve(t, app => {
    app.get('/comet', (request, reply) => reply.code(202).comet(['a'], 'cb'))
  })
  const stream = await open(`${url}/comet`)
  await stream.ended
  t.equal(stream.res.statusCode, 202)
  t.same(messages(stream.body(), 'cb'), ['a'])
})

t.test('headers the application set are kept; content-type and content-length are not', async t => {
  const { url } = await serve(t, app => {
    app.addHook('onRequest', async (request, reply) => {
      reply.header('access-control-allow-origin', 'https://example.com')
      reply.raw.setHeader('x-raw-header', 'from the hook')
    })
    app.get('/comet', (request, reply) => {
      reply.header('content-type', 'application/json')
      reply.header('content-length', '10')
      reply.header('x-custom', ['one', 'two'])
      return reply.comet(['a', 'b'], 'cb')
    })
  })
  const stream = await open(`${url}/comet`)
  await stream.ended
  const { headers } = stream.res
  t.equal(headers['access-control-allow-origin'], 'https://example.com', 'reply.header() in a hook')
  t.equal(headers['x-raw-header'], 'from the hook', 'reply.raw.setHeader() in a hook')
  t.equal(headers['x-custom'], 'one, two', 'a multi-value header')
  t.equal(headers['content-type'], 'text/html; charset=utf-8', 'the content type is overridden')
  t.equal(headers['content-length'], undefined, 'no content-length')
  t.equal(headers['transfer-encoding'], 'chunked')
  t.same(messages(stream.body(), 'cb'), ['a', 'b'], 'a wrong content-length did not cut the body')
})

t.test('onResponse runs once after a normal end, and the request is logged as completed', async t => {
  const statuses: number[] = []
  const hookDone = deferred()
  const { url, logs } = await serve(t, app => {
    app.get('/comet', {
      onResponse: async (request, reply) => {
        statuses.push(reply.statusCode)
        hookDone.resolve()
      }
    }, (request, reply) => reply.comet(['a'], 'cb'))
    app.get('/ping', async () => 'pong')
  })
  const completed = logged(logs, line => line.msg === 'request completed' && (line.res as { statusCode?: number })?.statusCode === 200)
  const stream = await open(`${url}/comet`)
  await stream.ended
  await hookDone.promise
  const line = await completed
  t.same(statuses, [200], 'onResponse ran with status 200')
  t.type(line.responseTime, 'number', 'with a response time')
  // Another request through the server: a second onResponse for the comet route would show by now.
  t.equal((await get(`${url}/ping`)).body, 'pong')
  t.same(statuses, [200], 'onResponse ran once')
  const cometCompleted = logs.filter(entry => entry.msg === 'request completed' && entry.reqId === line.reqId)
  t.equal(cometCompleted.length, 1, 'one "request completed" line for the comet request')
  t.notOk(logs.some(entry => entry.level >= 40), 'no warning or error was logged')
})

t.test('the async handler form: the awaited promise resolves after the last byte', async t => {
  let endedWhenResolved: boolean | undefined
  let resolvedValue: unknown = 'not yet'
  const { url } = await serve(t, app => {
    app.get('/comet', async (request, reply) => {
      resolvedValue = await reply.comet((async function * () {
        yield 'one'
        await new Promise(setImmediate)
        yield 'two'
        yield 'three'
      })(), 'cb')
      endedWhenResolved = reply.raw.writableEnded
    })
  })
  const stream = await open(`${url}/comet`)
  await stream.ended
  t.equal(stream.res.statusCode, 200)
  t.equal(stream.res.headers['content-type'], 'text/html; charset=utf-8')
  t.same(messages(stream.body(), 'cb'), ['one', 'two', 'three'])
  t.equal(resolvedValue, undefined, 'the promise resolved with undefined')
  t.equal(endedWhenResolved, true, 'the response was ended when the promise resolved')
})

t.test('an invalid header value: Fastify answers 500, nothing of the document is sent', async t => {
  const { url } = await serve(t, app => {
    app.get('/bad', (request, reply) => {
      reply.header('x-bad', 'a\nb')
      return reply.comet(['secret'], 'cb')
    })
    app.get('/comet', (request, reply) => reply.comet(['fine'], 'cb'))
  })
  const res = await get(`${url}/bad`)
  t.equal(res.status, 500)
  t.match(JSON.parse(res.body), { statusCode: 500, code: 'ERR_INVALID_CHAR' }, 'Fastify\'s JSON error')
  t.notOk(res.body.includes('<html>'), 'no comet document')
  t.notOk(res.body.includes('secret'), 'no message')
  t.notOk(res.body.includes('<script'), 'no script')
  t.equal(res.headers['x-bad'], undefined, 'the bad header was not sent')
  t.notOk(String(res.headers['content-type']).startsWith('text/html'), 'not served as a comet document')

  const next = await open(`${url}/comet`)
  await next.ended
  t.equal(next.res.statusCode, 200, 'the server keeps serving')
  t.same(messages(next.body(), 'cb'), ['fine'])
})

t.test('an invalid header is refused before the source function runs', async t => {
  let called = false
  const { url } = await serve(t, app => {
    app.get('/bad', (request, reply) => {
      reply.header('x-bad', 'a\nb')
      return reply.comet(() => {
        called = true
        return ['secret']
      }, 'cb')
    })
  })
  const res = await get(`${url}/bad`)
  t.equal(res.status, 500)
  t.equal(called, false, 'the source function never ran')
})

t.test('a source function is aborted when a check after it refuses the stream', async t => {
  let signal: AbortSignal | undefined
  const { url } = await serve(t, app => {
    const channel = app.comet.channel()
    app.get('/bad', (request, reply) => reply.comet(context => {
      signal = context.signal
      return channel
    }, { callback: 'cb', id: () => 'x' }))
  })
  const res = await get(`${url}/bad`)
  t.equal(res.status, 500)
  t.type(signal, AbortSignal, 'the source function was called')
  t.equal(signal?.aborted, true, 'its signal was aborted, so whatever it subscribed to is released')
})
