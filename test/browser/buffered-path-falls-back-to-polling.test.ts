// Behind a hop that buffers each response until it ends, a forever document delivers nothing; the
// shipped client, with its defaults, notices (its probe stream delivers nothing), polls instead,
// and every message reaches the page exactly once, in order (those published while it probed
// too), and soon after it was published once it has noticed. Two
// such hops: a proxy that buffers each response whole (test/buffering-proxy.ts, as an antivirus
// scanner does) and nginx ignoring X-Accel-Buffering (test/nginx.ts).
import t, { type Test } from 'tap'
import { startBufferingProxy } from '../buffering-proxy.js'
import { bufferingLocation, startNginx, withoutNginx } from '../nginx.js'
import { eachBrowser } from './browser.js'
import { fallbackServer, percentile } from './fallback-page.js'

const INTERVAL = 200 // ms between two publishes: 5 messages a second
const TOTAL = 100 // 20 s of them
const BOUND = 2000 // ms from publish to the page, at the 95th percentile

interface Hop {
  name: string
  /** Starts the hop in front of `origin`; resolves with its origin, or undefined when it cannot run here. */
  start: (t: Test, origin: string) => Promise<string | undefined>
}

const HOPS: Hop[] = [
  {
    name: 'a proxy that buffers each response whole',
    start: async (t, origin) => (await startBufferingProxy(t, origin)).url
  },
  {
    name: 'nginx ignoring X-Accel-Buffering (proxy_http_version 1.0, 16 MiB of buffers)',
    start: async (t, origin) => withoutNginx(t) ? undefined : await startNginx(t, { server: bufferingLocation(origin) })
  }
]

eachBrowser(t, (t, browser) => {
  for (const hop of HOPS) {
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
})
