// Issue 17 in the example over plain HTTP/1.1, where a browser keeps 6 connections per host: ten
// tabs of the example in one browser all load, every clock ticks, a chat line posted in any tab
// reaches all ten within a second, and the server holds one comet stream for all of them. On
// 127.0.0.1 the tabs elect their leader with Web Locks, on a host name over BroadcastChannel.
import t from 'tap'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import fastifyComet from '../../lib/index.js'
import type { BrowserPage } from './browser.js'
import { eachBrowser } from './browser.js'
import { HOST_SETTINGS, HOSTS, problems, until } from './shared-page.js'

// The example requires the built package ('..'); here it gets lib/ itself (see example.test.ts).
const { build } = t.mockRequire('../../example/server.js', { '../../dist/index.js': fastifyComet }) as {
  build: (options?: FastifyServerOptions) => FastifyInstance
}

const TABS = 10

/** In the page: resolves once the clock has shown three different times. */
function clockTicks (): boolean {
  const seen = ((window as unknown as { seenTimes?: Set<string> }).seenTimes ??= new Set())
  const time = document.getElementById('clock')?.textContent ?? ''
  if (/^\d\d:\d\d:\d\d\.\d$/.test(time)) seen.add(time)
  return seen.size >= 3
}

/** In the page: the texts of the chat log. */
function chatLog (): string[] {
  return [...document.querySelectorAll('#chat-log li')].map(item => item.lastChild?.textContent ?? '')
}

eachBrowser(t, (t, browser) => {
  for (const { host } of HOSTS) {
    t.test(`on ${host}: ten tabs of the example load, tick, chat, and share one stream`, async t => {
      const app = build()
      t.teardown(() => app.close())
      await app.listen({ port: 0, host: '127.0.0.1' })
      const origin = `http://${host}:${(app.server.address() as { port: number }).port}`
      const context = await browser.context(t)
      const pages: BrowserPage[] = []
      for (let i = 0; i < TABS; i++) {
        const page = await context.page()
        t.equal(await page.goto(origin), 200, `tab ${i} loads`)
        pages.push(page)
      }
      await Promise.all(pages.map(page => page.waitForFunction(clockTicks)))
      t.pass('every clock ticks')
      t.equal(app.comet.stats().streams.open, 1, 'one comet stream for the ten tabs')

      for (const from of [0, TABS - 1]) {
        const text = `hello from tab ${from}`
        // Each tab notes when the line shows up (the wait below only sees it when it polls).
        await Promise.all(pages.map(page => page.evaluate(line => {
          const log = document.getElementById('chat-log')!
          new MutationObserver((changes, observer) => {
            if (log.lastChild?.lastChild?.textContent !== line) return
            (window as unknown as { arrivedAt: number }).arrivedAt = Date.now()
            observer.disconnect()
          }).observe(log, { childList: true })
        }, text)))
        await pages[from].fill('input[name=text]', text)
        // From the form's submit on: the test driver's click takes its own time to get there.
        await pages[from].evaluate(() => {
          document.getElementById('chat-form')!.addEventListener('submit', () => {
            (window as unknown as { postedAt: number }).postedAt = Date.now()
          }, { once: true })
        })
        await pages[from].click('button')
        await Promise.all(pages.map(page => page.waitForFunction(() => (window as unknown as { arrivedAt?: number }).arrivedAt !== undefined)))
        const arrivals = await Promise.all(pages.map(page => page.evaluate(() => (window as unknown as { arrivedAt: number }).arrivedAt)))
        const took = Math.max(...arrivals) - await pages[from].evaluate(() => (window as unknown as { postedAt: number }).postedAt)
        t.ok(took < 1000, `a line posted in tab ${from} reached all ${TABS} tabs in ${took} ms`)
        await Promise.all(pages.map(page => page.evaluate(() => { delete (window as unknown as { arrivedAt?: number }).arrivedAt })))
      }
      for (const [i, page] of pages.entries()) {
        t.same(await page.evaluate(chatLog), ['hello from tab 0', `hello from tab ${TABS - 1}`], `tab ${i}: each line once`)
        t.same(problems(page), [], `tab ${i}: no console error`)
      }
      await until(() => app.comet.stats().streams.open === 1, 'one stream')
      t.equal(app.comet.stats().streams.opened, 1, 'and only one was ever opened')
    })
  }
}, HOST_SETTINGS)
