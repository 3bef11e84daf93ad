// A tab that joins the shared connection with a cursor of its own (a page rendered with
// channel.position()) first gets what it missed since that cursor, on a connection of its own,
// then the shared stream: each message once, in order; then its own connection ends.
import t, { type Test } from 'tap'
import type { BrowserPage, TestBrowser } from './browser.js'
import { eachBrowser } from './browser.js'
import { allReceived, HOST_SETTINGS, HOSTS, leaders, messages, pageUrl, problems, sharedServer, type SharedServer, until } from './shared-page.js'

interface Setup {
  server: SharedServer
  /** The tabs sharing the stream. */
  pages: BrowserPage[]
  /** Opens one more tab in the same context, rendered with `cursor`; `init` runs in it first. */
  join: (cursor: string, init?: () => void) => Promise<BrowserPage>
}

/** Two tabs sharing the stream, which have received ten messages. */
async function twoTabs (t: Test, browser: TestBrowser, host: string): Promise<Setup> {
  const server = await sharedServer(t)
  const context = await browser.context(t)
  const open = async (query: Record<string, string> = {}, init?: () => void): Promise<BrowserPage> => {
    const page = await context.page()
    if (init !== undefined) await page.addInitScript(init)
    await page.goto(pageUrl(host, server.port, query))
    return page
  }
  const pages = [await open(), await open()]
  await until(() => server.open() === 1, 'the shared stream')
  for (let i = 0; i < 10; i++) await server.publish()
  await allReceived(pages, 10)
  return { server, pages, join: async (cursor, init) => await open({ lastEventId: cursor }, init) }
}

eachBrowser(t, (t, browser) => {
  for (const { host } of HOSTS) {
    for (const rendered of ['at message 5', 'with the channel\'s position()'] as const) {
      t.test(`on ${host}: a tab rendered ${rendered}, while messages are published, gets each one after its cursor once`, async t => {
        const { server, pages, join } = await twoTabs(t, browser, host)
        const producer = setInterval(() => { server.publish().catch(() => {}) }, 50)
        t.teardown(() => clearInterval(producer))
        // A page kept in a form (or a slow render), or one rendered now, while messages go on.
        const cursor = rendered === 'at message 5' ? server.ids[4] : (await server.position())!
        const at = server.ids.indexOf(cursor) + 1
        const page = await join(cursor)
        await until(() => server.ids.length >= 40, '40 messages')
        clearInterval(producer)
        const total = server.ids.length
        await allReceived(pages, total)
        await allReceived([page], total - at)
        t.same(await page.evaluate(() => window.sharedTest.received), messages(server.ids, at + 1, total), `rendered ${rendered}: every message after it exactly once, in order`)
        for (const [i, other] of pages.entries()) {
          t.same(await other.evaluate(() => window.sharedTest.received), messages(server.ids, 1, total), `tab ${i}: unaffected`)
        }
        // Behind the leader, it catches up on a connection of its own (with position(), it is
        // behind too unless the leader had not received the newest message yet).
        const own = server.streams.slice(1)
        if (rendered === 'at message 5') t.equal(own.length, 1, 'it caught up on a connection of its own')
        t.ok(own.length <= 1 && own.every(stream => stream.lastEventId === cursor), 'from its cursor')
        await until(() => server.open() === 1, 'the end of its own connection')
        t.pass('which it dropped, for the shared stream')
        t.equal((await leaders([page, ...pages])).length, 1, 'one tab holds a frame')
        t.same(problems(page), [], 'no console error')
      })
    }

    t.test(`on ${host}: a tab rendered where the shared stream is follows it with no connection of its own`, async t => {
      const { server, pages, join } = await twoTabs(t, browser, host)
      // The tab asks the leader where the shared stream is (the client's protocol, overheard):
      // nothing is published before the answer, or the tab would be behind.
      const page = await join((await server.position())!, () => {
        new BroadcastChannel(`fastify-comet cometMessage ${location.origin}/events`).onmessage = event => {
          if (event.data.t === 'at') (window as unknown as { answered: boolean }).answered = true
        }
      })
      await page.waitForFunction(() => (window as unknown as { answered?: boolean }).answered === true)
      await server.publish()
      await allReceived(pages, 11)
      await allReceived([page], 1)
      t.same(await page.evaluate(() => window.sharedTest.received), messages(server.ids, 11, 11), 'the shared stream, from its cursor on')
      t.equal(server.streams.length, 1, 'one stream was ever opened')
      t.equal(await page.evaluate(() => document.querySelector('iframe')), null, 'the tab holds no frame')
    })
  }
}, HOST_SETTINGS)
