// JSON polls: `?transport=poll` with the header `Comet-Format: json` is answered with one JSON
// array of the entries a document's scripts would carry, for fetch(): no document, no helper
// script, none of a document's headers. A page of another site cannot send the header, so it only
// ever gets a document. A JSON poll ends as a poll does; its end means "poll again at once"
// unless its last entry says otherwise.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { once } from 'node:events'
import http from 'node:http'
import http2 from 'node:http2'
import { build, deferred, listen, logged } from './helpers.js'
import type { CometChannel } from '../types/index.js'
import fastifyComet from '../lib/index.js'

const JSON_POLL = '?transport=poll'
const JSON_HEADER = { 'comet-format': 'json' }

interface Answer { status: number, headers: http.IncomingHttpHeaders, body: string }

/** A GET over a fresh socket, read whole; a JSON poll's header unless `headers` are given. */
async function get (url: string, headers: http.OutgoingHttpHeaders = JSON_HEADER): Promise<Answer> {
  const req = http.get(url, { agent: false, headers })
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  res.setEncoding('utf8')
  let body = ''
  for await (const chunk of res) body += chunk
  return { status: res.statusCode as number, headers: res.headers, body }
}

/** A route that polls `room`, and a promise of the moment a request's poll has joined it. */
async function pollingRoute (t: Test, options = {}) {
  const { app, logs } = await build(t, { pollTimeout: 60000, ...options })
  const room = app.comet.channel<unknown>({ history: 5000 })
  let joined = deferred()
  app.get('/comet', (request, reply) => reply.comet(() => {
    joined.resolve() // the channel is joined once this returns, before the promise's reaction runs
    return room
  }, 'cb'))
  const url = `${await listen(app)}/comet`
  const nextJoin = (): Promise<void> => {
    const current = joined
    return current.promise.then(() => { joined = deferred() })
  }
  return { app, logs, room, url, nextJoin }
}

t.test('a JSON poll ends as soon as it has a message: one JSON array, the small head of data, no reconnect entry', async t => {
  const { logs, room, url, nextJoin } = await pollingRoute(t)
  const joined = nextJoin()
  const answer = get(url + JSON_POLL)
  await joined
  const id = await (room as CometChannel<string>).publish('hello')
  const { status, headers, body } = await answer
  t.equal(status, 200)
  t.same(JSON.parse(body), [1, 'hello', id], 'the entry of the message, and nothing else: its end says "again at once"')
  t.equal(headers['content-type'], 'application/json')
  t.equal(headers['cache-control'], 'no-store')
  for (const name of ['content-security-policy', 'x-frame-options', 'x-content-type-options', 'strict-transport-security',
    'cross-origin-opener-policy', 'cross-origin-resource-policy', 'referrer-policy', 'x-accel-buffering']) {
    t.notOk(name in headers, `no ${name}: a document's header, or the guard against other sites' pages, which are refused instead`)
  }
  const ended = await logged(logs, line => line.msg === 'comet stream ended')
  t.match(ended, { reason: 'poll', messages: 1, bytes: Buffer.byteLength(body) }, 'every byte of the body counted')
  t.equal(room.size, 0, 'the poll let go of the channel')
})

t.test('a JSON poll with nothing to deliver ends at its timeout with an empty array', async t => {
  const { url } = await pollingRoute(t, { pollTimeout: 30 })
  const { status, body } = await get(url + JSON_POLL)
  t.equal(status, 200)
  t.equal(body, '[]')
})

t.test('a JSON poll asked to answer at once (wait=0) opens with `open`: the route\'s poll timeout, and the keys', async t => {
  const { url } = await pollingRoute(t, { pollTimeout: 45000 })
  t.same(JSON.parse((await get(url + JSON_POLL + '&wait=0')).body), [2, 'open', { heartbeat: 0, poll: 45000 }],
    'the first poll of a series: the client watches the next ones for the route\'s poll timeout')
  const { app } = await build(t, { pollTimeout: 45000 })
  app.get('/several', (request, reply) => reply.comet({ chat: app.comet.channel(), news: app.comet.channel() }, 'cb'))
  const several = await get(`${await listen(app)}/several${JSON_POLL}&wait=0`)
  t.same(JSON.parse(several.body), [2, 'open', { heartbeat: 0, keys: ['chat', 'news'], poll: 45000 }])
})

t.test('a JSON poll resumes exactly from lastEventId, keys and all, and what it replays at once comes along whole', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  const chat = app.comet.channel<string>({ history: 5000 })
  const news = app.comet.channel<string>({ history: 10 })
  app.get('/several', (request, reply) => reply.comet({ chat, news }, 'cb'))
  const url = `${await listen(app)}/several${JSON_POLL}`
  const chatFrom = await chat.publish('before')
  const newsFrom = await news.publish('before')
  // Past a write's 16 KiB: the array is written in several pieces, and must still be one array.
  const ids: string[] = []
  for (let n = 0; n < 2000; n++) ids.push(await chat.publish(`chat ${n} ${'x'.repeat(20)}`))
  const newsId = await news.publish('headline')
  const { body } = await get(`${url}&lastEventId=${encodeURIComponent(JSON.stringify({ chat: chatFrom, news: newsFrom }))}`)
  const entries = JSON.parse(body) as unknown[]
  t.same(entries.slice(0, 2), [3, 'chat'], 'the key of the messages that follow')
  const received: unknown[] = []
  let key: unknown
  for (let i = 0; i < entries.length;) {
    if (entries[i] === 3) key = entries[i + 1]
    else received.push([key, entries[i + 1], entries[i + 2]])
    i += entries[i] === 3 ? 2 : 3
  }
  t.same(received.filter(entry => (entry as unknown[])[0] === 'chat'), ids.map((id, n) => ['chat', `chat ${n} ${'x'.repeat(20)}`, id]),
    'every message of one key after the cursor, once, in order, with its id')
  t.same(received.filter(entry => (entry as unknown[])[0] === 'news'), [['news', 'headline', newsId]], 'and of the other')
})

t.test('messages that JSON.parse must read (an own "__proto__" key) arrive as JSON, and text that looks like it stays text', async t => {
  const { room, url, nextJoin } = await pollingRoute(t)
  const joined = nextJoin()
  const answer = get(url + JSON_POLL)
  await joined
  const tricky = JSON.parse('{"__proto__":{"polluted":true},"text":"JSON.parse(\\")\\"</script>"}')
  const first = await room.publish(tricky)
  const second = await room.publish(['JSON.parse(', ')'])
  const third = await room.publish('JSON.parse("x")')
  const { body } = await answer
  t.notMatch(body, '</script>', 'still safe to embed')
  const entries = JSON.parse(body) as unknown[]
  t.same(entries, [1, tricky, first, 1, ['JSON.parse(', ')'], second, 1, 'JSON.parse("x")', third])
  t.ok(Object.prototype.hasOwnProperty.call(entries[1], '__proto__'), '"__proto__" is an own key, as JSON.parse makes it')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
})

t.test('without its header a poll is a document, whatever else the request says: a page of another site gets no JSON', async t => {
  const { app } = await build(t, { pollTimeout: 20 })
  app.get('/comet', (request, reply) => reply.comet(app.comet.channel(), 'cb'))
  const url = `${await listen(app)}/comet`
  // A <script src> or <img> of another site: no header of its choosing, whatever the query.
  for (const query of ['?transport=poll', '?transport=poll&format=json']) {
    const plain = await get(url + query, { 'sec-fetch-site': 'cross-site', 'sec-fetch-dest': 'script' })
    t.equal(plain.status, 200)
    t.match(plain.headers['content-type'], /^text\/html/, `${query}: a document`)
    t.equal(plain.headers['x-content-type-options'], 'nosniff', 'with its protection: no script can run it as one')
    t.equal(plain.headers['cross-origin-resource-policy'], 'same-origin')
  }
  t.equal((await get(url + '?transport=poll', { 'comet-format': 'html' })).headers['content-type'], 'text/html; charset=utf-8', 'another value: a document')
  t.equal((await get(url + '?transport=poll')).body, '[]', 'with it: JSON')
})

t.test('a JSON poll that ends for another reason than a poll\'s says when to come back', async t => {
  const { app, url, nextJoin } = await pollingRoute(t)
  const joined = nextJoin()
  const answer = get(url + JSON_POLL)
  await joined
  await app.close()
  t.same(JSON.parse((await answer).body), [2, 'reconnect', { delay: 'backoff' }], 'a server going away: later, with the backoff')
  const { app: failing } = await build(t, { pollTimeout: 60000 })
  failing.get('/comet', (request, reply) => reply.comet(async function * () {
    yield 'last words'
    throw new Error('the source broke')
  }, 'cb'))
  const failed = await get(`${await listen(failing)}/comet${JSON_POLL}`)
  t.same(JSON.parse(failed.body), [0, 'last words', 2, 'reconnect', { delay: 'backoff' }], 'a failed source: later too')
})

t.test('a JSON poll that reaches maxBytes ends like a poll: again at once', async t => {
  const { room, url, nextJoin } = await pollingRoute(t, { padding: 0, maxBytes: 10 })
  const joined = nextJoin()
  const answer = get(url + JSON_POLL)
  await joined
  const id = await room.publish('more than ten bytes')
  t.same(JSON.parse((await answer).body), [1, 'more than ten bytes', id])
})

t.test('a JSON poll through inject and over HTTP/2 (no connection-specific headers there)', async t => {
  const { app } = await build(t, { pollTimeout: 20 })
  app.get('/comet', (request, reply) => reply.comet(app.comet.channel(), 'cb'))
  const injected = await app.inject({ url: `/comet${JSON_POLL}&wait=0`, headers: JSON_HEADER })
  t.equal(injected.headers['content-type'], 'application/json')
  t.same(injected.json(), [2, 'open', { heartbeat: 0, poll: 20 }])
  // On Node < 24, Fastify closes HTTP/2 sessions at shutdown only with forceCloseConnections.
  const h2 = Fastify({ http2: true, forceCloseConnections: true })
  t.teardown(() => h2.close())
  await h2.register(fastifyComet, { pollTimeout: 20 })
  h2.get('/comet', (request, reply) => reply.comet(h2.comet.channel(), 'cb'))
  const session = http2.connect(await listen(h2))
  t.teardown(() => session.destroy())
  const request = session.request({ ':path': `/comet${JSON_POLL}`, ...JSON_HEADER })
  const [headers] = await once(request, 'response') as [http2.IncomingHttpHeaders]
  request.setEncoding('utf8')
  let body = ''
  for await (const chunk of request) body += chunk
  t.equal(headers[':status'], 200)
  t.same(Object.keys(headers).sort(), [':status', 'cache-control', 'content-type', 'date'])
  t.equal(body, '[]')
})

t.test('HEAD of a poll, document or JSON, writes and counts no body', async t => {
  const { app, logs } = await build(t, { pollTimeout: 60000 })
  app.get('/comet', (request, reply) => reply.comet(app.comet.channel(), 'cb'))
  const url = `${await listen(app)}/comet${JSON_POLL}`
  for (const headers of [{}, JSON_HEADER]) {
    logs.length = 0
    const req = http.request(url, { method: 'HEAD', agent: false, headers })
    req.end()
    const [res] = await once(req, 'response') as [http.IncomingMessage]
    res.resume()
    await once(res, 'end')
    t.match(await logged(logs, line => line.msg === 'comet stream ended'), { reason: 'head', bytes: 0 }, JSON.stringify(headers))
  }
})
