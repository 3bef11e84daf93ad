// The browser client (client/comet-client.js) in each browser, against a real server with the
// plugin's defaults (helmet, CSP nonces): the page loads the client and its own script, both external.
import t from 'tap'
import { EventEmitter, once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import type FastifyCometClient from '../../client/comet-client.js'
import type { CometSourceContext, CometStreamOptions } from '../../types/index.js'
import { build, listen } from '../helpers.js'
import { eachBrowser } from './browser.js'

interface ClientTestState {
  received: Array<{ message: unknown, id: string | undefined }>
  events: Array<'open' | FastifyCometClient.CloseInfo>
  /** Heartbeats the client was handed. */
  beats: number
  stream: FastifyCometClient.Stream
}

declare global {
  interface Window {
    clientTest: ClientTestState
    FastifyComet: typeof FastifyCometClient
  }
}

const CLIENT_PATH = '/comet/client.js'

const HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>comet client</title><link rel="icon" href="data:,">
<script src="${CLIENT_PATH}"></script><script src="/app.js"></script></head>
<body></body>
</html>
`

// The page's own script: connects to ?stream= with the delays given in the query; with
// ?closeAfter=N, it calls close() from its N-th onClose, while the client waits to reconnect;
// with ?slowMs=N, each message keeps the page busy for N ms. It counts the heartbeats the client
// is handed (by wrapping the client's cometControl, which the comet document looks up each time).
const APP = `'use strict'
const params = new URLSearchParams(location.search)
const state = window.clientTest = { received: [], events: [], beats: 0 }
const slowMs = Number(params.get('slowMs') || 0)
state.stream = FastifyComet.connect(params.get('stream'), {
  minDelay: Number(params.get('minDelay') || 500),
  maxDelay: Number(params.get('maxDelay') || 30000),
  connectTimeout: Number(params.get('connectTimeout') || 15000),
  onMessage (message, id) {
    state.received.push({ message, id })
    for (const end = performance.now() + slowMs; performance.now() < end;);
  },
  onOpen () { state.events.push('open') },
  onClose (info) {
    state.events.push(info)
    if (state.events.filter(event => event !== 'open').length === Number(params.get('closeAfter'))) state.stream.close()
  }
})
const control = window.cometMessage.cometControl
window.cometMessage.cometControl = function (type, detail) {
  if (type === 'beat') state.beats++
  return control.call(this, type, detail)
}
`

async function server (t: Test): Promise<{ app: FastifyInstance, origin: () => Promise<string> }> {
  const { app } = await build(t, { clientPath: CLIENT_PATH })
  app.get('/page', (request, reply) => reply.type('text/html; charset=utf-8').send(HTML))
  app.get('/app.js', (request, reply) => reply.type('text/javascript; charset=utf-8').send(APP))
  return { app, origin: () => listen(app) }
}

/** Messages `{ n }` kept for clients that reconnect, as a database keeps them. */
interface MessageLog {
  /** Appends `count` messages, numbered on from the last. */
  add: (count: number) => void
  readonly length: number
  /** The lastEventId of each stream, in the order they started. */
  resumedFrom: Array<string | undefined>
  /** Adds GET /events: the log, with ids, from the message after lastEventId on, then live. */
  route: (app: FastifyInstance, options?: CometStreamOptions) => void
}

function messageLog (): MessageLog {
  const messages: Array<{ n: number }> = []
  const added = new EventEmitter()
  const resumedFrom: Array<string | undefined> = []
  async function * source ({ lastEventId, signal }: CometSourceContext): AsyncGenerator<{ n: number }> {
    resumedFrom.push(lastEventId)
    let next = lastEventId === undefined ? 0 : Number(lastEventId)
    for (;;) {
      while (next >= messages.length) await once(added, 'message', { signal })
      yield messages[next++]
    }
  }
  return {
    add (count) {
      for (let i = 0; i < count; i++) messages.push({ n: messages.length + 1 })
      added.emit('message')
    },
    get length () { return messages.length },
    resumedFrom,
    route (app, options = {}) {
      app.get('/events', (request, reply) => reply.comet(source, { callback: 'parent.cometMessage', id: message => String(message.n), ...options }))
    }
  }
}

/** The messages `{ n }` from 1 to `count`, each with its id, as the page records them. */
function numbered (count: number): Array<{ message: { n: number }, id: string }> {
  return Array.from({ length: count }, (_, i) => ({ message: { n: i + 1 }, id: String(i + 1) }))
}

/** In the page: the number of frames (the client's comet frame, if one is open). */
function frameCount (): number {
  return document.querySelectorAll('iframe').length
}

/** In the page: resolves after any reconnect timer the client could have set (maxDelay 40 ms) has fired. */
function outlastReconnectTimers (): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, 300))
}

function pageUrl (origin: string, stream: string, settings: { minDelay?: number, maxDelay?: number, closeAfter?: number, connectTimeout?: number, slowMs?: number } = {}): string {
  const query = new URLSearchParams({ stream })
  for (const [name, value] of Object.entries(settings)) query.set(name, String(value))
  return `${origin}/page?${query.toString()}`
}

eachBrowser(t, (t, browser) => {
  t.test('rotation: reconnects at once, every message exactly once, in order', async t => {
    const { app, origin } = await server(t)
    const TOTAL = 200
    const log = messageLog()
    // The helper script takes about 700 of the 1200 bytes, and an entry at least 17: however the
    // messages are batched, 200 of them need at least seven documents.
    log.route(app, { maxBytes: 1200, padding: 0 })
    const page = await browser.page(t)
    const producer = setInterval(() => log.length === TOTAL ? clearInterval(producer) : log.add(1), 10)
    t.teardown(() => clearInterval(producer))
    // goto waits for the page's load event: the client opens its frame only after it.
    await page.goto(pageUrl(await origin(), '/events', { minDelay: 50, maxDelay: 200 }))
    await page.waitForFunction(n => window.clientTest.received.length >= n, TOTAL)
    t.same(await page.evaluate(() => window.clientTest.received), numbered(TOTAL), 'each message once, in order')
    t.same(await page.evaluate(() => window.clientTest.stream.lastEventId), String(TOTAL))
    // The source never ends: every document ended because it was full.
    const closes = (await page.evaluate(() => window.clientTest.events))
      .filter((event): event is FastifyCometClient.CloseInfo => event !== 'open')
    t.ok(closes.length >= 6, `${closes.length} rotations`)
    t.same(closes.filter(info => info.reason !== 'rotated' || info.delay !== 0 || info.attempt !== 0), [], 'each one reconnected at once, with no backoff')
    t.equal(log.resumedFrom[0], undefined, 'the first connection starts from the beginning')
    const ids = log.resumedFrom.slice(1).map(Number)
    t.ok(ids.every((id, i) => id > (ids[i - 1] ?? 0)), `each reconnect resumes after the last id received: ${ids.join(', ')}`)
    t.same(page.problems, [], 'no console errors or CSP violations')
  })

  t.test('shutdown: every client comes back after a delay of its own and resumes where it was', async t => {
    const log = messageLog()
    // A front server hands each request to the instance in service, as a load balancer does in a
    // rolling restart: the old instance shuts down while the new one already answers.
    const [{ app: old }, { app: next }] = await Promise.all([server(t), server(t)])
    log.route(old)
    log.route(next)
    await Promise.all([old.ready(), next.ready()])
    let inService = old
    const front = http.createServer((request, response) => inService.routing(request, response))
    t.teardown(() => {
      front.closeAllConnections()
      front.close()
    })
    await once(front.listen(0, '127.0.0.1'), 'listening')
    const base = `http://127.0.0.1:${(front.address() as AddressInfo).port}`

    const pages = await Promise.all([browser.page(t), browser.page(t), browser.page(t)])
    await Promise.all(pages.map(page => page.goto(pageUrl(base, '/events', { minDelay: 1000 }))))
    log.add(5)
    await Promise.all(pages.map(page => page.waitForFunction(() => window.clientTest.received.length === 5)))
    inService = next
    await old.close() // every stream ends with "reconnect later"
    log.add(5)
    await Promise.all(pages.map(page => page.waitForFunction(() => window.clientTest.received.length === 10)))

    const delays: number[] = []
    for (const [i, page] of pages.entries()) {
      const { received, events } = await page.evaluate(() => window.clientTest)
      t.same(received, numbered(10), `client ${i}: each message once, in order`)
      const closes = events.filter((event): event is FastifyCometClient.CloseInfo => event !== 'open')
      t.equal(closes.length, 1, `client ${i}: one connection ended`)
      t.match(closes[0], { reason: 'ended', messages: 5, attempt: 0 }, `client ${i}: by the shutdown, not as a rotation`)
      t.ok(closes[0].delay! >= 0 && closes[0].delay! < 1000, `client ${i}: reconnected after ${closes[0].delay} ms, drawn below minDelay`)
      delays.push(closes[0].delay!)
      t.same(page.problems, [], `client ${i}: no console error`)
    }
    // Three draws below 1000 ms that are all equal: one chance in a million.
    t.ok(new Set(delays).size > 1, `spread out: ${delays.join(', ')} ms`)
    t.same(log.resumedFrom, [undefined, undefined, undefined, '5', '5', '5'], 'each client started from the beginning, then resumed after the last id it received')
  })

  // When the client waits for a connection that never comes back, these waits end it: far longer
  // than the client needs (it tries again within maxDelay, 200 ms).
  const COMING_BACK = { timeout: 10000 }

  // Server side heartbeats every 200 ms: the client judges a connection lost after a second of
  // silence (its floor), instead of a minute with the default 20 s.
  const SHORT_HEARTBEAT = { heartbeat: 200 }

  t.test('a restart: the client keeps trying while connections are refused, and resumes', async t => {
    const log = messageLog()
    const { app, origin } = await server(t)
    log.route(app)
    const base = await origin()
    const page = await browser.page(t)
    // Firefox fires no load or error event on a frame whose navigation failed: only the
    // connect timeout tells the client that such a connection is not coming.
    await page.goto(pageUrl(base, '/events', { minDelay: 50, maxDelay: 200, connectTimeout: 500 }))
    log.add(3)
    await page.waitForFunction(() => window.clientTest.received.length === 3)
    const refused = page.requestFailed(`${base}/events?lastEventId=3`)
    await app.close() // the stream ends with "reconnect later"; then nothing listens
    await refused
    const { app: restarted } = await build(t)
    log.route(restarted)
    await restarted.listen({ port: Number(new URL(base).port), host: '127.0.0.1' })
    log.add(2)
    await page.waitForFunction(() => window.clientTest.received.length === 5, undefined, COMING_BACK)
    t.same(await page.evaluate(() => window.clientTest.received), numbered(5), 'each message once, in order')
    // Firefox reports no refused connection: a silent stream looks held back, so the client tries
    // a quick poll, and polls on if that one reaches the restarted server first (each poll then
    // resumes after the last id it had).
    const resumed = log.resumedFrom.slice(1).map(Number)
    t.same(log.resumedFrom[0], undefined)
    t.ok(resumed.length > 0 && resumed.every((id, i) => id >= 3 && id >= (resumed[i - 1] ?? 3)), `every reconnect resumed after the last id received: ${resumed.join(', ')}`)
    const reasons = new Set((await page.evaluate(() => window.clientTest.events))
      .filter((event): event is FastifyCometClient.CloseInfo => event !== 'open').map(info => info.reason))
    t.ok([...reasons].every(reason => reason === 'ended' || reason === 'timeout' || reason === 'buffered'),
      `refused connections ended, timed out, or were taken for held back: ${[...reasons].join(', ')}`)
  })

  t.test('a connection lost mid-stream (no end of the document): the client notices and resumes', async t => {
    const log = messageLog()
    const { app, origin } = await server(t)
    log.route(app, SHORT_HEARTBEAT)
    const page = await browser.page(t)
    await page.goto(pageUrl(await origin(), '/events', { minDelay: 50, maxDelay: 200 }))
    log.add(3)
    await page.waitForFunction(() => window.clientTest.received.length === 3)
    app.server.closeAllConnections() // as a crash, a proxy or a network change would
    log.add(2)
    await page.waitForFunction(() => window.clientTest.received.length === 5, undefined, COMING_BACK)
    t.same(await page.evaluate(() => window.clientTest.received), numbered(5), 'each message once, in order')
    const { events } = await page.evaluate(() => window.clientTest)
    t.match(events, ['open', { reason: 'lost', messages: 3, attempt: 0 }, 'open'], 'the watchdog gave the silent connection up')
    t.same(log.resumedFrom, [undefined, '3'], 'and the next one resumed after the last id')
    // Chromium logs the document cut off (net::ERR_INCOMPLETE_CHUNKED_ENCODING); nothing else may go wrong.
    t.same(page.problems.filter(problem => !problem.includes('ERR_INCOMPLETE_CHUNKED_ENCODING')), [], 'no other console error, no CSP violation')
  })

  t.test('a busy page (a long task, slow handlers) is not taken for a lost connection', async t => {
    const log = messageLog()
    const { app, origin } = await server(t)
    log.route(app, SHORT_HEARTBEAT)
    const page = await browser.page(t)
    // Each message keeps the page busy for 100 ms: twenty of them at once, two seconds in all.
    await page.goto(pageUrl(await origin(), '/events', { slowMs: 100 }))
    log.add(1)
    await page.waitForFunction(() => window.clientTest.received.length === 1)
    // A long task: the page (and its comet frame, in the same event loop) runs nothing for three
    // seconds, while the heartbeats arrive. The watchdog's timer fires late, once it can.
    const beats = await page.evaluate(() => {
      for (const end = performance.now() + 3000; performance.now() < end;);
      return window.clientTest.beats
    })
    // Ten heartbeats later, two seconds of them, any verdict of the watchdog has been given.
    await page.waitForFunction(n => window.clientTest.beats >= n, beats + 10)
    log.add(20)
    await page.waitForFunction(() => window.clientTest.received.length === 21, undefined, COMING_BACK)
    await page.waitForFunction(n => window.clientTest.beats >= n, beats + 20)
    t.same(await page.evaluate(() => window.clientTest.received), numbered(21), 'each message once, in order')
    t.same(await page.evaluate(() => window.clientTest.events), ['open'], 'one connection, never closed')
    t.same(log.resumedFrom, [undefined], 'never reconnected')
    t.same(page.problems, [], 'no console errors or CSP violations')
  })

  t.test('close(): the connection ends, the frame and the global go, nothing reconnects', async t => {
    const { app, origin } = await server(t)
    let requests = 0
    const ended: Array<Promise<void>> = []
    app.get('/ticks', (request, reply) => {
      requests++
      const done = reply.comet(async function * ({ signal }) {
        for (let n = 0; ; n++) {
          yield n
          await sleep(20, undefined, { signal })
        }
      }, 'parent.cometMessage')
      ended.push(done)
      return done
    })
    const page = await browser.page(t)
    await page.goto(pageUrl(await origin(), '/ticks', { minDelay: 20, maxDelay: 40 }))
    await page.waitForFunction(() => window.clientTest.received.length >= 3)
    t.equal(await page.evaluate(frameCount), 1)
    await page.evaluate(() => window.clientTest.stream.close())
    await Promise.all(ended) // the server saw the client leave
    const after = await page.evaluate(() => ({
      frames: document.querySelectorAll('iframe').length,
      callback: typeof (window as unknown as Record<string, unknown>).cometMessage,
      received: window.clientTest.received.length,
      closed: window.clientTest.stream.closed,
      last: window.clientTest.events[window.clientTest.events.length - 1]
    }))
    t.match(after, { frames: 0, callback: 'undefined', closed: true, last: { reason: 'closed', delay: undefined } })
    await page.evaluate(outlastReconnectTimers)
    t.equal(await page.evaluate(frameCount), 0, 'no frame after close()')
    t.equal(requests, 1, 'no request after close()')
    t.equal(await page.evaluate(() => window.clientTest.received.length), after.received, 'no message after close()')
    t.same(page.problems, [], 'no console errors or CSP violations')
  })

  t.test('close() while waiting to reconnect clears the timer', async t => {
    const { app, origin } = await server(t)
    let requests = 0
    app.get('/empty', (request, reply) => {
      requests++
      return reply.comet([], 'parent.cometMessage')
    })
    const page = await browser.page(t)
    // The third onClose calls close(): its reconnect timer is set by then, its frame gone.
    await page.goto(pageUrl(await origin(), '/empty', { minDelay: 20, maxDelay: 40, closeAfter: 3 }))
    await page.waitForFunction(() => window.clientTest.stream.closed)
    await page.evaluate(outlastReconnectTimers)
    t.equal(await page.evaluate(frameCount), 0, 'no frame after close()')
    t.equal(requests, 3, 'no request after close(): one per connection that ended')
    t.equal((await page.evaluate(() => window.clientTest.events)).length, 3, 'and no onClose for close() itself, with no connection open')
    t.same(page.problems, [], 'no console errors or CSP violations')
  })

  // The client's timers are checked exactly in test/client.test.ts; here, that real frame loads
  // drive them: each connection that ends early, with or without a message, counts as a failure.
  t.test('backoff: a failing, an empty and a snapshot-then-end server get growing delays, not a hot loop', async t => {
    const { app, origin } = await server(t)
    app.get('/down', (request, reply) => reply.code(503).send('down for maintenance'))
    app.get('/empty', (request, reply) => reply.comet([], 'parent.cometMessage'))
    app.get('/snapshot', (request, reply) => reply.comet([{ state: 'everything so far' }], 'parent.cometMessage'))
    const base = await origin()
    const CLOSES = 4 // delays drawn below 100, 200, 400 and 800 ms
    for (const route of ['/down', '/empty', '/snapshot']) {
      const page = await browser.page(t)
      await page.goto(pageUrl(base, route, { minDelay: 100 }))
      await page.waitForFunction(n => window.clientTest.events.filter(event => event !== 'open').length >= n, CLOSES)
      await page.evaluate(() => window.clientTest.stream.close())
      const early = (await page.evaluate(() => window.clientTest.events))
        .filter((event): event is FastifyCometClient.CloseInfo => event !== 'open').slice(0, CLOSES)
      t.same(early.map(info => info.attempt), [0, 1, 2, 3], `${route}: attempts count up, a message does not reset them`)
      t.same(early.map(info => info.messages), Array(CLOSES).fill(route === '/snapshot' ? 1 : 0), `${route}: messages per connection`)
      t.ok(early.every(info => info.reason !== 'rotated' && info.delay! >= 0 && info.delay! < 100 * 2 ** info.attempt),
        `${route}: each delay drawn below the capped exponential bound: ${early.map(info => info.delay).join(', ')} ms`)
      // A failed frame load is logged as a console error by the browser; nothing else may go wrong.
      t.same(page.problems.filter(problem => route !== '/down' || !/503|Service Unavailable/.test(problem)), [], `${route}: no other console error`)
    }
  })

  t.test('delivered scripts are removed from the comet document', async t => {
    const { app, origin } = await server(t)
    const COUNT = 200
    app.get('/many', (request, reply) => reply.comet(async function * ({ signal }) {
      for (let n = 1; n <= COUNT; n++) {
        yield { n, text: 'x'.repeat(100) }
        if (n % 20 === 0) await sleep(5, undefined, { signal }) // several writes, not one
      }
      await once(signal, 'abort') // keep the document open
    }, { callback: 'parent.cometMessage', heartbeat: 10 }))
    const page = await browser.page(t)
    await page.goto(pageUrl(await origin(), '/many'))
    await page.waitForFunction(n => window.clientTest.received.length === n, COUNT)
    const frame = await page.frame(url => url.endsWith('/many'))
    t.ok(frame, 'the comet frame is still open')
    const left = await frame!.evaluate(() => ({ scripts: document.scripts.length, nodes: document.body.childNodes.length }))
    t.ok(left.scripts <= 2, `${left.scripts} script elements left`)
    t.ok(left.nodes <= 5, `${left.nodes} nodes left in the body`)
    t.same((await page.evaluate(() => window.clientTest.received)).map(({ message }) => (message as { n: number }).n),
      Array.from({ length: COUNT }, (_, i) => i + 1))
    await page.evaluate(() => window.clientTest.stream.close())
    t.same(page.problems, [], 'no console errors or CSP violations')
  })
})
