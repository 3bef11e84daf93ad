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
  /** Opens one more tab in the same context, rendered with `cursor`. */
  join: (cursor: string) => Promise<BrowserPage>
}

/** Two tabs sharing the stream, which have received ten messages. */
async function twoTabs (t: Test, browser: TestBrowser, host: string): Promise<Setup> {
  const server = await sharedServer(t)
  const context = await browser.context(t)
  const open = async (query: Record<string, string> = {}): Promise<BrowserPage> => {
    const page = await context.page()
    await page.goto(pageUrl(host, server.port, query))
    return page
  }
  const pages = [await open(), await open()]
  await until(() => server.open() === 1, 'the shared stream')
  for (let i = 0; i < 10; i++) await server.publish()
  await allReceived(pages, 10)
  return { server, pages, join: async cursor => await open({ lastEventId: cursor }) }
}

eachBrowser(t, (t, browser) => {
  for (const { host } of HOSTS) {
    for (const [rendered, at] of [['at message 5', 5], ['at the newest message', 10]] as const) {
      t.test(`on ${host}: a tab rendered ${at === 5 ? 'behind the stream' : 'with the newest id'}, while messages are published, gets each one after its cursor once`, async t => {
        const { server, pages, join } = await twoTabs(t, browser, host)
        const producer = setInterval(() => { server.publish().catch(() => {}) }, 50)
        t.teardown(() => clearInterval(producer))
        const cursor = server.ids[at - 1]
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
        t.equal(server.streams[1].lastEventId, cursor, 'it caught up on a connection of its own, from its cursor')
        await until(() => server.open() === 1, 'the end of its own connection')
        t.equal(server.streams.length, 2, 'which it dropped, for the shared stream')
        t.equal((await leaders([page, ...pages])).length, 1, 'one tab holds a frame')
        t.same(problems(page), [], 'no console error')
      })
    }

    t.test(`on ${host}: with nothing published after its cursor, the tab's own connection ends at the server's first heartbeat`, async t => {
      const { server, pages, join } = await twoTabs(t, browser, host)
      const page = await join(server.ids[9])
      await until(() => server.streams.length === 2, 'its own connection')
      await until(() => server.open() === 1, 'the end of its own connection') // heartbeat 500 ms: the server was idle, the replay is over
      await server.publish()
      await allReceived(pages, 11)
      await allReceived([page], 1)
      t.same(await page.evaluate(() => window.sharedTest.received), messages(server.ids, 11, 11), 'then the shared stream')
      t.equal(server.streams.length, 2, 'and no other connection')
    })
  }
}, HOST_SETTINGS)
