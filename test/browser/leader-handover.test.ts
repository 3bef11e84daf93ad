// The tab that holds the shared connection goes (closed, navigated away, into the back/forward
// cache) while a channel with history publishes every 100 ms: another tab takes over within 2 s,
// from the newest id it has seen, and no tab loses or repeats a message.
import t, { type Test } from 'tap'
import type { BrowserContext, BrowserPage, TestBrowser } from './browser.js'
import { eachBrowser } from './browser.js'
import { allReceived, HOST_SETTINGS, HOSTS, leaders, messages, pageUrl, problems, sharedServer, type SharedServer, until } from './shared-page.js'

const TABS = 4

interface Setup { server: SharedServer, context: BrowserContext, pages: BrowserPage[], stop: () => void }

/** A server publishing every 100 ms from the moment TABS tabs share its stream. */
async function start (t: Test, browser: TestBrowser, host: string): Promise<Setup> {
  const server = await sharedServer(t)
  const context = await browser.context(t)
  const pages = []
  for (let i = 0; i < TABS; i++) {
    const page = await context.page()
    await page.goto(pageUrl(host, server.port))
    pages.push(page)
  }
  // A tab without a cursor starts live: publishing starts once the leader is subscribed.
  await until(() => server.open() === 1, 'the shared stream')
  const producer = setInterval(() => { server.publish().catch(() => {}) }, 100)
  const stop = (): void => clearInterval(producer)
  t.teardown(stop)
  await allReceived(pages, 5)
  return { server, context, pages, stop }
}

/**
 * The first stream the server saw open after the first `before` (the next leader's), and when.
 * Counted from the handover, not from the start: without Web Locks, claims that cross on a busy
 * machine may give two leaders for a moment while the tabs load, one of which steps down.
 */
async function streamOpened (server: SharedServer, before: number): Promise<{ at: number, lastEventId: string | undefined }> {
  await until(() => server.streams.length > before, `stream ${before + 1}`)
  return server.streams[before]
}

/** Publishes until `total` messages, then checks that each tab received each exactly once, in order. */
async function checkEveryTab (t: Test, { server, pages, stop }: Setup, total: number): Promise<void> {
  await until(() => server.ids.length >= total, `${total} messages`)
  stop()
  await allReceived(pages, total)
  for (const [i, page] of pages.entries()) {
    t.same(await page.evaluate(() => window.sharedTest.received), messages(server.ids, 1, total), `tab ${i}: every message exactly once, in order`)
    t.same(problems(page), [], `tab ${i}: no console error`)
  }
  t.equal((await leaders(pages)).length, 1, 'one tab holds the frame')
  t.equal(server.open(), 1, 'one stream open')
}

eachBrowser(t, (t, browser) => {
  for (const { host } of HOSTS) {
    for (const how of ['is closed', 'navigates away'] as const) {
      t.test(`on ${host}: the leader ${how}; another tab streams within 2 s, and every tab has every message once`, async t => {
        const setup = await start(t, browser, host)
        const [leader] = await leaders(setup.pages)
        setup.pages = setup.pages.filter(page => page !== leader)
        const before = setup.server.streams.length
        const left = Date.now()
        if (how === 'is closed') await leader.close()
        else await leader.goto(`http://${host}:${setup.server.port}/app.js`)
        const next = await streamOpened(setup.server, before)
        t.ok(next.at - left < 2000, `the next leader streamed ${next.at - left} ms later`)
        t.ok(setup.server.ids.includes(next.lastEventId!), `from the newest id it had seen: ${next.lastEventId}`)
        await checkEveryTab(t, setup, 40)
      })
    }

    t.test(`on ${host}: a leader frozen into the back/forward cache hands over, and resumes at once when restored`, async t => {
      const setup = await start(t, browser, host)
      const [leader] = await leaders(setup.pages)
      // What the browser fires around its cache (Playwright's Chromium has it switched off).
      const opened = setup.server.streams.length
      const left = Date.now()
      await leader.evaluate(() => dispatchEvent(new PageTransitionEvent('pagehide', { persisted: true })))
      t.equal(await leader.evaluate(() => document.querySelector('iframe')), null, 'the frozen tab let its frame go')
      const next = (await streamOpened(setup.server, opened)).at
      t.ok(next - left < 2000, `the next leader streamed ${next - left} ms later`)
      const before = await leader.evaluate(() => window.sharedTest.received.length)
      await allReceived(setup.pages.filter(page => page !== leader), before + 5)
      t.equal(await leader.evaluate(() => window.sharedTest.received.length), before, 'nothing reaches a frozen tab')
      const newest = await leader.evaluate(() => window.sharedTest.stream.lastEventId)
      const back = Date.now()
      await leader.evaluate(() => dispatchEvent(new PageTransitionEvent('pageshow', { persisted: true })))
      const restored = await streamOpened(setup.server, opened + 1)
      t.ok(restored.at - back < 1000, `the restored tab catches up on a connection of its own at once (${restored.at - back} ms)`)
      t.equal(restored.lastEventId, newest, 'from its newest id')
      await checkEveryTab(t, setup, 40)
    })
  }
}, HOST_SETTINGS)
