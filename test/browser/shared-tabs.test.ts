// One stream for every tab: tabs of one origin that connect() to the same URL with the same
// callback share one connection, held by one of them; close() stops one tab; shared: false opts out.
import t from 'tap'
import { eachBrowser } from './browser.js'
import { allReceived, HOST_SETTINGS, HOSTS, everyTabReceives, leaders, messages, pageUrl, sharedServer, until } from './shared-page.js'

eachBrowser(t, (t, browser) => {
  for (const { host, locks } of HOSTS) {
    t.test(`on ${host}: six tabs share one stream, and each receives every message once, in order`, async t => {
      const server = await sharedServer(t)
      const context = await browser.context(t)
      const pages = []
      for (let i = 0; i < 6; i++) {
        const page = await context.page()
        await page.goto(pageUrl(host, server.port))
        pages.push(page)
      }
      t.equal(await pages[0].evaluate(() => window.sharedTest.locks), locks, `navigator.locks is ${locks}`)
      await until(() => server.open() === 1, 'the shared stream')
      await everyTabReceives(t, server, pages, 20)
      t.equal(server.open(), 1, 'one comet stream open on the server')
      t.equal(server.streams.length, 1, 'and only one was ever opened')
      t.equal((await leaders(pages)).length, 1, 'one tab holds the frame')
    })

    t.test(`on ${host}: close() in one tab stops that tab only; the connection ends with the last tab`, async t => {
      const server = await sharedServer(t)
      const context = await browser.context(t)
      const pages = []
      for (let i = 0; i < 3; i++) {
        const page = await context.page()
        await page.goto(pageUrl(host, server.port))
        pages.push(page)
      }
      await until(() => server.open() === 1, 'the shared stream')
      await server.publish()
      await allReceived(pages, 1)
      const [leader] = await leaders(pages)
      const followers = pages.filter(page => page !== leader)
      // A follower leaves: the others, the leader among them, go on.
      await followers[0].evaluate(() => window.sharedTest.stream.close())
      await server.publish()
      await allReceived([leader, followers[1]], 2)
      t.equal(server.open(), 1, 'the stream stays open for the others')
      // The leader leaves: the last tab takes over.
      await leader.evaluate(() => window.sharedTest.stream.close())
      await server.publish()
      await allReceived([followers[1]], 3)
      t.same(await followers[1].evaluate(() => window.sharedTest.received), messages(server.ids, 1, 3), 'the last tab: every message once, in order')
      t.same(await followers[0].evaluate(() => window.sharedTest.received), messages(server.ids, 1, 1), 'the first tab closed: nothing after close()')
      t.same(await leader.evaluate(() => window.sharedTest.received), messages(server.ids, 1, 2), 'the leader closed: nothing after close()')
      t.same(await leader.evaluate(() => window.sharedTest.events.at(-1)), 'closed', 'its onClose said so')
      t.ok(await followers[1].evaluate(() => document.querySelector('iframe') !== null), 'the last tab holds the frame')
      await followers[1].evaluate(() => window.sharedTest.stream.close())
      await until(() => server.open() === 0, 'the end of the stream')
      t.pass('the connection closed with the last tab')
      t.equal(server.streams.length, 2, 'two streams in all: the first leader\'s and the last tab\'s')
    })

    t.test(`on ${host}: shared: false gives each tab a connection of its own`, async t => {
      const server = await sharedServer(t)
      const context = await browser.context(t)
      const pages = []
      for (let i = 0; i < 3; i++) {
        const page = await context.page()
        await page.goto(pageUrl(host, server.port, { shared: 'false' }))
        pages.push(page)
      }
      await until(() => server.open() === 3, 'three streams')
      await server.publish()
      await allReceived(pages, 1)
      t.equal((await leaders(pages)).length, 3, 'every tab holds a frame')
      t.equal(server.open(), 3)
    })
  }
}, HOST_SETTINGS)
