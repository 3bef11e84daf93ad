// Node keeps a response's rendered head for as long as the response lives; an idle comet stream
// lives for minutes. Once the head went out with the first chunk the plugin lets go of it, and the
// response behaves as before: the client got every header, headers still count as sent, late
// headers are still refused, and the stream goes on and ends properly.
import t from 'tap'
import type { ServerResponse } from 'node:http'
import { build, deferred, listen, messages, open } from './helpers.js'

const headOf = (raw: ServerResponse): unknown => (raw as unknown as { _header: unknown })._header

t.test("an open stream no longer holds its rendered head, helmet's headers included", async t => {
  const { app } = await build(t, { padding: 0 })
  const opened = deferred<ServerResponse>()
  const release = deferred()
  app.get('/comet', (request, reply) => {
    opened.resolve(reply.raw)
    return reply.comet(async function * () {
      yield 'before'
      await release.promise
      yield 'after'
    }, 'cb')
  })
  const stream = await open(`${await listen(app)}/comet`)
  const raw = await opened.promise
  await stream.waitFor('"before"')
  t.match(stream.res.headers['content-security-policy'], /script-src 'self' 'nonce-[0-9a-f]{32}'/, 'the client got the whole head')
  t.equal(stream.res.headers['x-frame-options'], 'SAMEORIGIN')
  const held = headOf(raw)
  t.equal(typeof held, 'string', 'still a string, as Node expects')
  t.ok(String(held).length < 32, `a short shared stand-in is kept (${JSON.stringify(held)}), not the head`)
  t.notMatch(String(held), /nonce|content-security-policy/i)
  t.equal(raw.headersSent, true, 'headers still count as sent')
  t.throws(() => raw.setHeader('x-late', '1'), { code: 'ERR_HTTP_HEADERS_SENT' }, 'a late header is still refused')
  release.resolve()
  await stream.ended
  t.same(messages(stream.body(), 'cb'), ['before', 'after'], 'the stream went on and ended with its terminating chunk')
})

t.test("a response that is not Node's own keeps its head (inject reads its headers back)", async t => {
  const { app } = await build(t, { padding: 0 })
  let raw!: ServerResponse
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    return reply.comet(['one'], 'cb')
  })
  const res = await app.inject('/comet')
  t.match(headOf(raw), /^HTTP\/1\.1 200 OK\r\n/, 'the rendered head is untouched')
  t.match(res.headers['content-security-policy'], /nonce-/)
})
