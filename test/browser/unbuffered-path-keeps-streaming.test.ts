// Without a buffering hop nothing changes: the shipped client, with its defaults, streams and never
// polls. Messages keep coming for more than twice the client's default probe time (3 s), and the
// server is never asked for `?transport=poll`.
import t from 'tap'
import { eachBrowser } from './browser.js'
import { fallbackServer } from './fallback-page.js'

const INTERVAL = 200 // ms between two publishes
const TOTAL = 35 // 7 s of them

eachBrowser(t, (t, browser) => {
  t.test('a direct path: the client streams every message and never polls', async t => {
    const server = await fallbackServer(t)
    const page = await browser.page(t)
    await page.goto(`${server.origin}/page`)
    await server.subscribed // a page without an id starts live
    for (let n = 1; n <= TOTAL; n++) {
      await server.publish(n)
      await new Promise(resolve => setTimeout(resolve, INTERVAL)) // the feed's rate, not a wait for an event
    }
    await page.waitForFunction(n => window.fallback.received.length >= n, TOTAL, { timeout: 30000 })
    const { received, closes, transport } = await page.evaluate(() => ({ received: window.fallback.received, closes: window.fallback.closes, transport: window.fallback.stream.transport }))
    t.same(received.map(({ message }) => message.n), Array.from({ length: TOTAL }, (_, i) => i + 1), 'each message once, in order')
    t.equal(transport, 'stream', 'the handle says it streams')
    t.same(closes, [], 'the stream was never given up')
    t.equal(server.polls(), 0, 'the server was never polled')
    t.notOk(page.requests.some(({ url }) => url.includes('transport=poll')), 'the page never asked for a poll')
    t.same(page.problems, [], 'no console errors or CSP violations')
  })
})
