// End to end across instances: pages in Chromium with the shipped client, behind nginx's round
// robin to two instances (child processes on the built package) that share the channel through
// Redis. Streams rotate every few messages, and every reconnection of a page goes to the other
// instance, while messages are published through both at a steady rate: every page receives every
// message exactly once, in order, with the id its publish gave.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { startNginx, withoutNginx } from '../nginx.js'
import { useRedis } from '../redis/redis-server.js'
import { publish, startInstances } from '../redis/processes.js'
import { eachBrowser } from './browser.js'

declare global {
  interface Window {
    // Kept by the fixture's page (test/fixtures/redis-instance.js).
    pageState: { received: Array<{ message: unknown, id: string | undefined }>, resets: unknown[], closes: string[] }
  }
}

const PAGES = 2
const TOTAL = 240
const TEXT = 'about a hundred bytes of chat text, give or take, so that documents rotate every few messages'

// Four processes besides the browser: on a busy machine this file needs more than the usual minute.
t.setTimeout(120000)

// Each missing component skips the file with its own line (nginx, redis-server, then each browser).
const redis = withoutNginx(t) ? undefined : useRedis(t)

if (redis !== undefined) {
  eachBrowser(t, (t, browser) => {
    t.test('through nginx round robin to two instances, rotating all the time: every page gets every message once, in order', async t => {
      const servers = await startInstances(t, redis, 2, { HISTORY: '1000', MAX_BYTES: '8192' })
      const pages = Array.from({ length: PAGES }, (_, n) => `p${n}`)
      // An upstream per page: round robin sends each of its reconnections to the other instance.
      // (With one for all, pages that rotate together could each stay on one instance for good.)
      const upstream = (name: string): string => `upstream ${name} { ${servers.map(({ origin }) => `server ${new URL(origin).host};`).join(' ')} }`
      const location = (path: string, name: string): string => `
    location ${path} {
      proxy_pass http://${name};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }`
      const proxy = await startNginx(t, {
        http: ['all', ...pages].map(upstream).join('\n'),
        server: location('/', 'all') + pages.map(page => location(`/${page}/`, page)).join('')
      })

      const start = await publish(servers[0], 'start')
      // Each page's first stream resumes after `start`: nothing published from here on is missed.
      const opened = await Promise.all(pages.map(async page => {
        const opened = await browser.page(t)
        await opened.goto(`${proxy}/${page}/?lastEventId=${encodeURIComponent(start)}`)
        return opened
      }))

      const ids: string[] = []
      for (let n = 1; n <= TOTAL; n++) {
        ids.push(await publish(servers[n % 2], { n, text: TEXT }))
        await sleep(5) // a steady rate, as a live feed has
      }
      const last = ids[TOTAL - 1]
      for (const [n, page] of opened.entries()) {
        await page.waitForFunction(id => window.pageState.received.some(entry => entry.id === id), last, { timeout: 30000 })
        const { received, resets, closes } = await page.evaluate(() => window.pageState)
        t.same(received.map(({ message }) => (message as { n: number }).n), Array.from({ length: TOTAL }, (_, i) => i + 1), `page ${n}: each message once, in order`)
        t.same(received.map(({ id }) => id), ids, `page ${n}: with the ids publish() resolved with`)
        t.same(resets, [], `page ${n}: nothing was out of reach`)
        const rotations = closes.filter(reason => reason === 'rotated').length
        t.ok(rotations >= 10, `page ${n}: its stream rotated ${rotations} times (${closes.length} connections ended)`)
        t.same(page.problems, [], `page ${n}: no console errors or CSP violations`)
      }
      // What each instance served, from its own log: every page's streams went to both, many times.
      for (const page of pages) {
        const served = servers.map(({ logs }) => logs.filter(line => line.msg === 'incoming request' &&
        (line.req as { url: string }).url.startsWith(`/${page}/events?lastEventId=`)).length)
        t.ok(served.every(count => count >= 5), `${page}'s streams, instance by instance: ${served.join(' and ')}`)
      }
    })
  })
}
