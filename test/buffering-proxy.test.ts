// The whole-response buffering proxy the fallback tests put between the browser and the server
// (test/buffering-proxy.ts): it holds a forever document back for as long as it goes on, passes a
// poll on whole once it ends, and lets go of the upstream request when its client leaves.
import http from 'node:http'
import t from 'tap'
import { build, deferred, listen, loneMessageSource, messages, open, replayWithControl, turns } from './helpers.js'
import { startBufferingProxy } from './buffering-proxy.js'

t.test('a stream is held back whole: the client sees nothing of it until the upstream response ends', async t => {
  const { app } = await build(t, { padding: 0 })
  const lone = loneMessageSource()
  let finished = false
  app.get('/comet', (request, reply) => {
    reply.raw.on('finish', () => { finished = true })
    return reply.comet(lone.source(), 'cb')
  })
  const proxy = await startBufferingProxy(t, await listen(app))
  let answered = false
  const response = open(`${proxy.url}/comet`).then(stream => {
    answered = true
    t.ok(finished, 'the head came once the upstream response had ended')
    return stream
  })
  await proxy.holding('"first"')
  await turns(20) // what a pass-through hop had forwarded by now would have reached the client
  t.notOk(answered, 'no head or body while the stream goes on, though it has a message')
  lone.release()
  const stream = await response
  await stream.ended
  t.same(messages(stream.body(), 'cb'), ['first', 'second'], 'then the whole document')
  t.equal(stream.res.headers['content-length'], String(Buffer.byteLength(stream.body())), 'with its length, not chunked')
  t.equal(stream.res.headers['transfer-encoding'], undefined)
  t.equal(stream.res.headers['content-type'], 'text/html; charset=utf-8', 'the upstream head is passed on')
  t.same(proxy.requests, ['/comet'])
})

t.test('a poll passes through whole, as the server wrote it', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  const room = app.comet.channel<string>({ history: 10 })
  const before = await room.position()
  const id = await room.publish('hello')
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const origin = await listen(app)
  const proxy = await startBufferingProxy(t, origin)
  const path = `/comet?transport=poll&lastEventId=${encodeURIComponent(before)}`
  const poll = await open(`${proxy.url}${path}`)
  await poll.ended
  t.same(replayWithControl(poll.body(), 'cb'), [['message', 'hello', id], ['control', 'reconnect', { delay: 0 }]])
  t.same(proxy.requests, [path], 'the query reached the server')
})

t.test('a client that leaves aborts its upstream request: the server releases the source', async t => {
  const { app } = await build(t)
  const released = deferred()
  const subscribed = deferred()
  app.get('/comet', (request, reply) => reply.comet(({ signal }) => {
    signal.addEventListener('abort', () => released.resolve())
    subscribed.resolve()
    return (async function * () { await new Promise(() => {}) }())
  }, 'cb'))
  const proxy = await startBufferingProxy(t, await listen(app))
  const gone = deferred()
  const request = http.get(`${proxy.url}/comet`, { agent: false })
  request.on('error', () => gone.resolve())
  await subscribed.promise
  await proxy.holding('<html><body>')
  request.destroy()
  await gone.promise
  await released.promise
  t.equal(app.comet.stats().streams.endReasons['client-gone'], 1, 'the stream ended as a client that left')
})
