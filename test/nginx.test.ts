// Behind nginx with its default proxy_buffering on, messages still arrive one by one: the
// response's X-Accel-Buffering: no turns buffering off for it. Runs Debian's nginx as a reverse
// proxy (test/nginx.ts).
//
// With `proxy_http_version 1.1` nginx reads the chunked upstream body chunk by chunk and passes on
// each whole chunk even while buffering; with nginx's default `proxy_http_version 1.0` the body
// has no framing and a buffering nginx holds it until a buffer fills. That second case is the one
// where X-Accel-Buffering decides (checked: with `proxy_ignore_headers X-Accel-Buffering` it
// deadlocks), so both are tested. An nginx that ignores it (bufferingLocation) holds a stream
// back and passes a poll on whole: the path the client's polling fallback is for.
import http from 'node:http'
import t from 'tap'
import { build, deferred, listen, open, messages, loneMessageSource, replayWithControl } from './helpers.js'
import { bufferingLocation, startNginx, withoutNginx } from './nginx.js'

if (!withoutNginx(t)) {
  for (const httpVersion of ['1.1', '1.0']) {
    t.test(`through nginx (proxy_http_version ${httpVersion}, proxy_buffering on), a lone message arrives before the next is produced`, { timeout: 10000 }, async t => {
      const { app } = await build(t, { padding: 0 })
      const lone = loneMessageSource() // deadlocks if nginx held a message back in its buffers
      app.get('/comet', (request, reply) => reply.comet(lone.source(), 'cb'))
      const proxy = await startNginx(t, {
        server: `
    location / {
      proxy_pass ${await listen(app)};
      proxy_http_version ${httpVersion};
      proxy_set_header Connection "";
      proxy_buffering on;
    }`
      })
      const stream = await open(`${proxy}/comet`)
      await stream.waitFor('0,"first",')
      t.notOk(stream.body().includes('second'), 'the second message was not produced yet')
      lone.release()
      await stream.ended
      t.same(messages(stream.body(), 'cb'), ['first', 'second'], 'the body ends cleanly through the proxy')
      t.equal(stream.res.headers['content-type'], 'text/html; charset=utf-8')
    })
  }

  t.test('through nginx ignoring X-Accel-Buffering (bufferingLocation), a stream is held back while a poll passes whole', { timeout: 10000 }, async t => {
    const { app } = await build(t, { pollTimeout: 60000 })
    const room = app.comet.channel<string>({ history: 10 })
    const streaming = deferred()
    app.get('/comet', (request, reply) => {
      const done = reply.comet(room, 'cb')
      if ((request.query as { transport?: string }).transport !== 'poll') streaming.resolve() // subscribed by now
      return done
    })
    const proxy = await startNginx(t, { server: bufferingLocation(await listen(app)) })
    const before = await room.position()
    let answered = false
    const stream = http.get(`${proxy}/comet`, { agent: false }, () => { answered = true })
    stream.on('error', () => {}) // destroyed at teardown
    t.teardown(() => { stream.destroy() })
    await streaming.promise
    const id = await room.publish('hello') // written to the stream before the poll below is even sent
    const poll = await open(`${proxy}/comet?transport=poll&lastEventId=${encodeURIComponent(before)}`)
    await poll.ended
    t.same(replayWithControl(poll.body(), 'cb').filter(([kind]) => kind === 'message'), [['message', 'hello', id]], 'the poll came through whole')
    t.notOk(answered, 'the stream, which had the message first, has not come through at all')
  })
}
