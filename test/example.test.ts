// The example server (example/server.js): its page carries no inline code, /clock and /chat are
// comet streams, and POST /chat validates its body and reaches every open /chat stream. The last
// test runs it as `npm run example` does. The browser side is in test/browser/example.test.ts.
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { resolve } from 'node:path'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import fastifyComet from '../lib/index.js'
import { startServer } from './child-server.js'
import { messages, open, replay } from './helpers.js'

// The example requires the built package ('..'); in this process it gets lib/ itself, so the tests
// run the current source and coverage never counts dist/.
const { build } = t.mockRequire('../example/server.js', { '../dist/index.js': fastifyComet }) as {
  build: (options?: FastifyServerOptions) => FastifyInstance
}

/** The example's app, closed when `t` ends. */
function buildExample (t: Test): FastifyInstance {
  const app = build()
  t.teardown(() => app.close())
  return app
}

async function start (t: Test): Promise<string> {
  return await buildExample(t).listen({ port: 0, host: '127.0.0.1' })
}

const TIME = /^\d\d:\d\d:\d\d\.\d$/

t.test('the page and its files are served, and the page holds no inline script or style', async t => {
  const app = buildExample(t)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.headers['content-security-policy'], /script-src 'self' 'nonce-/, "under helmet's CSP")
  t.notMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is external')
  t.notMatch(page.body, /<style|\sstyle=|\son\w+=/i, 'no inline style or event handler')
  t.match(page.body, /<script src="\/app\.js" defer><\/script>/)
  t.match(page.body, /<link rel="stylesheet" href="\/app\.css">/)

  for (const [url, type] of [['/app.js', /^text\/javascript/], ['/app.css', /^text\/css/]] as const) {
    const file = await app.inject(url)
    t.equal(file.statusCode, 200, url)
    t.match(file.headers['content-type'], type, `${url} content type`)
    t.ok(file.body.length > 0, `${url} has content`)
  }
  t.notMatch((await app.inject('/app.js')).body, /innerHTML|insertAdjacentHTML|document\.write/, 'app.js never writes markup')
})

t.test('GET /clock streams the time, a new value every 100 ms', async t => {
  const stream = await open(`${await start(t)}/clock`)
  t.equal(stream.res.headers['content-type'], 'text/html; charset=utf-8')
  await stream.waitFor('<script nonce="')
  while (messages(stream.body(), 'parent.clockTick').length < 3) await once(stream.res, 'data')
  const times = messages(stream.body(), 'parent.clockTick') as string[]
  t.ok(times.every(time => TIME.test(time)), `times look like 14:05:09.3: ${times.join(', ')}`)
  t.equal(new Set(times).size, times.length, 'each one differs from the last')
  stream.req.destroy()
})

t.test('POST /chat reaches every open /chat stream, as JSON or as a form post', async t => {
  const origin = await start(t)
  const streams = [await open(`${origin}/chat`), await open(`${origin}/chat`)]
  t.teardown(() => { for (const stream of streams) stream.req.destroy() })
  // Headers are written after the stream subscribed: from here on no message is missed.
  const post = (type: string, body: string): Promise<Response> => fetch(`${origin}/chat`, { method: 'POST', headers: { 'content-type': type }, body })

  t.equal((await post('application/json', JSON.stringify({ text: 'hello </script><!--' }))).status, 204)
  t.equal((await post('application/x-www-form-urlencoded', 'text=from+a+form+%26+more')).status, 204)
  for (const stream of streams) {
    await stream.waitFor('from a form')
    const received = messages(stream.body(), 'parent.chatMessage') as Array<{ text: string, time: string }>
    t.same(received.map(message => message.text), ['hello </script><!--', 'from a form & more'])
    t.ok(received.every(message => !Number.isNaN(Date.parse(message.time))), 'each with its time')
  }
})

t.test('GET /live multiplexes the clock and the chat: one stream, each message with its key', async t => {
  const origin = await start(t)
  const live = await open(`${origin}/live`)
  t.teardown(() => live.req.destroy())
  await live.waitFor('3,"clock"')
  t.equal((await fetch(`${origin}/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi"}' })).status, 204)
  await live.waitFor('"hi"')
  const calls = replay(live.body(), 'parent.live')
  t.ok(calls.filter(([, , key]) => key === 'clock').every(([time, id]) => TIME.test(time as string) && id === undefined), 'clock ticks, without ids')
  const chat = calls.filter(([, , key]) => key === 'chat')
  t.match(chat, [[{ text: 'hi' }, /^[0-9a-f]{12}-1$/, 'chat']])
})

t.test('the page is rendered with the chat\'s last lines and a cursor after them: a stream opened with it loses nothing published since', async t => {
  const origin = await start(t)
  const post = (text: string): Promise<Response> => fetch(`${origin}/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) })
  const empty = await (await fetch(origin)).text()
  const emptyCursor = /data-cursor="([^"]+)"/.exec(empty)?.[1] as string
  t.match(emptyCursor, /^[0-9a-f]{12}-0$/, 'no line yet: the channel\'s position')
  await post('one </li><script>')
  const page = await (await fetch(origin)).text()
  t.match(page, /<li><time datetime="[^"]+">\d\d:\d\d:\d\d<\/time>one &#60;\/li&#62;&#60;script&#62;<\/li><\/ol>/, 'the line, escaped')
  const cursor = /data-cursor="([^"]+)"/.exec(page)?.[1] as string
  t.match(cursor, /-1$/, 'the id of the newest line shown')
  // Published between the render and the stream: what a page without a cursor loses.
  await post('two')
  await post('three')
  const fromRender = await open(`${origin}/live?lastEventId=${encodeURIComponent(JSON.stringify({ chat: cursor }))}`)
  const fromEmpty = await open(`${origin}/live?lastEventId=${encodeURIComponent(JSON.stringify({ chat: emptyCursor }))}`)
  t.teardown(() => { fromRender.req.destroy(); fromEmpty.req.destroy() })
  await fromRender.waitFor('"three"')
  await fromEmpty.waitFor('"three"')
  const texts = (body: string): unknown[] => replay(body, 'parent.live').filter(([, , key]) => key === 'chat').map(([message]) => (message as { text: string }).text)
  t.same(texts(fromRender.body()), ['two', 'three'])
  t.same(texts(fromEmpty.body()), ['one </li><script>', 'two', 'three'])
})

t.test('the page shows the last 50 lines', async t => {
  const app = buildExample(t)
  for (let n = 1; n <= 52; n++) await app.inject({ method: 'POST', url: '/chat', payload: { text: `line ${n}` } })
  const page = (await app.inject('/')).body
  t.equal(page.split('<li>').length - 1, 50)
  t.match(page, /line 3<\/li>/)
  t.notMatch(page, /line 2<\/li>/)
  t.match(page, /data-cursor="[0-9a-f]{12}-52"/)
})

t.test('POST /chat refuses a body without a sensible text', async t => {
  const app = buildExample(t)
  const bodies = [{}, { text: '' }, { text: ' \n\t ' }, { text: 'x'.repeat(501) }, { text: { nested: 1 } }, ['text']]
  for (const body of bodies) {
    const res = await app.inject({ method: 'POST', url: '/chat', payload: body })
    t.equal(res.statusCode, 400, JSON.stringify(body).slice(0, 40))
  }
  t.equal((await app.inject({ method: 'POST', url: '/chat', payload: { text: 'x'.repeat(500) } })).statusCode, 204, '500 characters are fine')
})

t.test('`node example/server.js` listens on PORT and HOST with the built package, and needs no Redis', async t => {
  // No tap hooks or coverage in the child: it runs dist/, as users do.
  const { origin } = await startServer(t, resolve(__dirname, '../example/server.js'), { PORT: '0', HOST: '127.0.0.1', REDIS_URL: undefined })
  const page = await fetch(origin)
  t.equal(page.status, 200)
  t.match(await page.text(), /<title>fastify-comet example<\/title>/)
  const clock = await open(`${origin}/clock`)
  await clock.waitFor('__fastifyComet([0,"')
  clock.req.destroy()
  const chat = await open(`${origin}/chat`)
  t.equal((await fetch(`${origin}/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi"}' })).status, 204)
  await chat.waitFor('"hi"')
  chat.req.destroy()
  t.pass('the chat works in process')
})
