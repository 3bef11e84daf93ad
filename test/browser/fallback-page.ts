// The server, page and test of the polling fallback tests: a history channel behind GET /events,
// and a page that connects to it with the shipped client and its defaults, recording each message
// with the page's clock (Date.now(), the machine's clock, as the server's is) and each onClose with
// its time. The server counts the polls it is asked for.
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { build, deferred, listen } from '../helpers.js'
import type { TestBrowser } from './browser.js'

/** A message of the tests: its number and when the server published it (Date.now()). */
export interface Stamped { n: number, publishedAt: number }

export interface FallbackState {
  received: Array<{ message: Stamped, id: string | undefined, at: number }>
  closes: Array<{ reason: string, transport?: string, at: number }>
  stream: { transport: 'stream' | 'poll' }
}

declare global {
  interface Window {
    fallback: FallbackState
  }
}

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fallback</title><link rel="icon" href="data:,">
<script src="/comet/client.js"></script><script src="/app.js"></script></head><body></body></html>
`

const APP = `'use strict'
const state = window.fallback = { received: [], closes: [] }
state.stream = FastifyComet.connect('/events', {
  onMessage (message, id) { state.received.push({ message, id, at: Date.now() }) },
  onClose (info) { state.closes.push(Object.assign({ at: Date.now() }, info)) }
})
`

export interface FallbackServer {
  app: FastifyInstance
  origin: string
  /** Publishes message n, stamped with the time of publishing. */
  publish: (n: number) => Promise<string>
  /** Requests for /events with ?transport=poll so far. */
  polls: () => number
  /** Those of them asked for as JSON (fetch() polls, with the header Comet-Format: json). */
  jsonPolls: () => number
  /** Resolves once a first request for /events is subscribed to the channel. */
  subscribed: Promise<void>
}

/** The app on a free port, with the plugin's defaults; it closes with `t`. */
export async function fallbackServer (t: Test): Promise<FallbackServer> {
  const { app } = await build(t, { clientPath: '/comet/client.js' })
  let polls = 0
  let jsonPolls = 0
  app.addHook('onRequest', async request => {
    const url = new URL(request.url, 'http://localhost')
    if (url.pathname !== '/events' || url.searchParams.get('transport') !== 'poll') return
    polls++
    if (request.headers['comet-format'] === 'json') jsonPolls++
  })
  app.get('/page', (request, reply) => reply.type('text/html; charset=utf-8').send(HTML))
  app.get('/app.js', (request, reply) => reply.type('text/javascript; charset=utf-8').send(APP))
  const channel = app.comet.channel<Stamped>({ name: 'events', history: 1000 })
  const subscribed = deferred()
  app.get('/events', (request, reply) => {
    const done = reply.comet(channel, { callback: 'parent.cometMessage' })
    subscribed.resolve() // reply.comet() subscribes before it returns
    return done
  })
  return {
    app,
    origin: await listen(app),
    publish: n => channel.publish({ n, publishedAt: Date.now() }),
    polls: () => polls,
    jsonPolls: () => jsonPolls,
    subscribed: subscribed.promise
  }
}

/** Nearest-rank percentile of `values`. */
function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

const INTERVAL = 200 // ms between two publishes: 5 messages a second
const TOTAL = 100 // 20 s of them
const BOUND = 2000 // ms from publish to the page, at the 95th percentile

/** A hop between the browser and the server that buffers each response until it ends. */
export interface BufferingHop {
  name: string
  /** Starts the hop in front of `origin` for the length of `t`; resolves with the hop's origin. */
  start: (t: Test, origin: string) => Promise<string>
}

/**
 * Through `hop`, the shipped client notices that its stream delivers nothing and polls; a channel
 * publishing from while the first stream probes reaches the page exactly once, in order, and
 * within BOUND ms (p95) of its publish once the client has noticed.
 */
export function fallsBackToPolling (t: Test, browser: TestBrowser, hop: BufferingHop): void {
  t.test(`through ${hop.name}: the client falls back to polling; a channel publishing every ${INTERVAL} ms for ${TOTAL * INTERVAL / 1000} s, from while it probes, reaches the page exactly once, in order, and within ${BOUND} ms (p95) once it has noticed`, async t => {
    const server = await fallbackServer(t)
    const entry = await hop.start(t, server.origin)
    if (entry === undefined) return
    const page = await browser.page(t)
    await page.goto(`${entry}/page`)
    // Publishing starts while the first stream probes the path (it delivers nothing through the
    // hop), so the first messages reach the page only through the polls that follow.
    await server.subscribed
    const ids: string[] = []
    const firstPublish = Date.now()
    for (let n = 1; n <= TOTAL; n++) {
      ids.push(await server.publish(n))
      await new Promise(resolve => setTimeout(resolve, INTERVAL)) // the feed's rate, not a wait for an event
    }
    await page.waitForFunction(n => window.fallback.received.some(({ message }) => message.n === n), TOTAL, { timeout: 30000 })
    // One more, so that a late repeat of what came before would be seen before it.
    await server.publish(TOTAL + 1)
    await page.waitForFunction(n => window.fallback.received.some(({ message }) => message.n === n), TOTAL + 1, { timeout: 30000 })
    const { received, closes, transport } = await page.evaluate(() => ({ received: window.fallback.received, closes: window.fallback.closes, transport: window.fallback.stream.transport }))
    const measured = received.slice(0, -1)
    t.same(measured.map(({ message }) => message.n), Array.from({ length: TOTAL }, (_, i) => i + 1), 'each message once, in order')
    t.same(measured.map(({ id }) => id), ids, 'with the ids publish() resolved with')
    const noticed = closes.find(({ reason, transport }) => reason === 'buffered' && transport === 'stream')
    t.ok(noticed, `a probe stream ended as buffered: ${JSON.stringify(closes)}`)
    t.equal(transport, 'poll', 'still polling: the path still buffers')
    t.ok(server.polls() > 0, 'the server was polled')
    t.equal(server.jsonPolls(), server.polls(), 'with fetch(): every poll a JSON poll, none a document in a frame')
    // The bound applies from the moment the client noticed; what was published before waited for it.
    const after = measured.filter(({ message }) => noticed !== undefined && message.publishedAt >= noticed.at)
    t.ok(after.length >= TOTAL / 2, `${after.length} messages were published once the client had noticed`)
    const delays = after.map(({ message, at }) => at - message.publishedAt)
    const p95 = percentile(delays, 95)
    t.comment(`${browser.name}, ${hop.name}: noticed ${noticed === undefined ? '?' : noticed.at - firstPublish} ms after the first publish; ` +
      `then publish -> page p50 ${percentile(delays, 50)} ms, p95 ${p95} ms, max ${Math.max(...delays)} ms; ${server.polls()} polls, ${closes.length} onClose`)
    t.ok(p95 <= BOUND, `p95 publish -> page ${p95} ms, within ${BOUND} ms`)
    t.same(page.problems, [], 'no console errors or CSP violations')
  })
}
