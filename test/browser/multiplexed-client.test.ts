// The shipped client on a multiplexed stream (two channels with history and a clock in one
// document), shared by the tabs of one context: each key's messages reach every tab once, in
// order, across rotations that resume with the JSON cursor; a tab rendered with a cursor of one
// key catches up on that key.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, listen } from '../helpers.js'
import { eachBrowser } from './browser.js'
import { addPage, HOST_SETTINGS, HOSTS, leaders, pageUrl, problems, type Received, until } from './shared-page.js'

interface Live {
  app: FastifyInstance
  port: number
  publish: (key: 'chat' | 'alerts') => Promise<void>
  ids: { chat: string[], alerts: string[] }
  /** The cursor of each /live request, in order. */
  cursors: Array<string | undefined>
  /** The query's transport and the Comet-Format header of each /live request, e.g. 'poll json', 'undefined undefined'. */
  kinds: string[]
}

async function live (t: Test): Promise<Live> {
  const { app } = await build(t, { clientPath: '/comet/client.js' })
  addPage(app)
  const chat = app.comet.channel<{ n: number }>({ name: 'chat', history: 1000 })
  const alerts = app.comet.channel<{ n: number }>({ name: 'alerts', history: 1000 })
  const ids = { chat: [] as string[], alerts: [] as string[] }
  const cursors: Live['cursors'] = []
  const kinds: string[] = []
  app.get('/live', (request, reply) => {
    const query = request.query as { lastEventId?: string, transport?: string }
    cursors.push(query.lastEventId)
    kinds.push(`${query.transport} ${request.headers['comet-format']}`)
    return reply.comet({
      chat,
      alerts,
      clock: async function * ({ signal }) {
        for (;;) {
          await sleep(100, undefined, { signal })
          yield Date.now()
        }
      }
    }, { callback: 'parent.cometMessage', heartbeat: 500, maxBytes: 8192 })
  })
  const port = Number(new URL(await listen(app)).port)
  return {
    app,
    port,
    ids,
    cursors,
    kinds,
    async publish (key) {
      ids[key].push(await (key === 'chat' ? chat : alerts).publish({ n: ids[key].length + 1 }))
    }
  }
}

/** What a tab recorded for `key`. */
function ofKey (received: Received[], key: string): Received[] {
  return received.filter(entry => entry.key === key)
}

function expected (ids: string[], key: string, from = 1): Received[] {
  return ids.slice(from - 1).map((id, i) => ({ message: { n: from + i }, id, key }))
}

eachBrowser(t, (t, browser) => {
  for (const { host } of HOSTS) {
    t.test(`on ${host}: two tabs share a multiplexed stream across rotations: each key's messages once, in order`, async t => {
      const server = await live(t)
      const context = await browser.context(t)
      const pages = []
      for (let i = 0; i < 2; i++) {
        const page = await context.page()
        await page.goto(pageUrl(host, server.port, { stream: '/live' }))
        pages.push(page)
      }
      await until(() => server.app.comet.stats().streams.open === 1, 'the shared stream')
      const TOTAL = 100
      for (let n = 1; n <= TOTAL; n++) {
        await server.publish('chat')
        await server.publish('alerts')
        await sleep(5)
      }
      for (const page of pages) {
        await page.waitForFunction(n => window.sharedTest.received.filter(entry => entry.key !== 'clock').length >= n, 2 * TOTAL, { timeout: 20000 })
        // The clock ticks every 100 ms of a document's life, and documents rotate every 8 KiB: on a
        // busy machine the publishing can be over before a tick.
        await page.waitForFunction(() => window.sharedTest.received.some(entry => entry.key === 'clock'), undefined, { timeout: 20000 })
      }
      for (const [i, page] of pages.entries()) {
        const received = await page.evaluate(() => window.sharedTest.received)
        t.same(ofKey(received, 'chat'), expected(server.ids.chat, 'chat'), `tab ${i}: every chat message once, in order`)
        t.same(ofKey(received, 'alerts'), expected(server.ids.alerts, 'alerts'), `tab ${i}: every alert once, in order`)
        t.ok(ofKey(received, 'clock').length > 0 && ofKey(received, 'clock').every(entry => entry.id === undefined), `tab ${i}: clock ticks, without ids`)
        t.same(await page.evaluate(() => window.sharedTest.stream.lastEventId), { chat: server.ids.chat.at(-1), alerts: server.ids.alerts.at(-1) }, `tab ${i}: lastEventId has one id per key`)
        t.same(problems(page), [], `tab ${i}: no console error`)
      }
      const resumed = server.cursors.slice(1)
      t.ok(resumed.length >= 3, `${resumed.length} rotations`)
      t.ok(resumed.every(cursor => cursor !== undefined && Object.keys(JSON.parse(cursor)).every(key => key === 'chat' || key === 'alerts')),
        'each reconnect sent the JSON cursor of the keys with ids')
      // The clock keeps the document rotating: between the end of one and the next, none is open.
      await until(() => server.app.comet.stats().streams.open === 1, 'one stream open')
      t.equal(server.app.comet.stats().streams.open, 1, 'one stream open')
      t.equal((await leaders(pages)).length, 1, 'held by one tab')
    })

    t.test(`on ${host}: two tabs share a multiplexed stream that polls (transport: 'poll'): fetch() polls, each key's messages once, in order`, async t => {
      const server = await live(t)
      const context = await browser.context(t)
      const pages = []
      for (let i = 0; i < 2; i++) {
        const page = await context.page()
        await page.goto(pageUrl(host, server.port, { stream: '/live', transport: 'poll' }))
        pages.push(page)
      }
      await until(() => server.kinds.length > 0, 'the first poll')
      const TOTAL = 50
      for (let n = 1; n <= TOTAL; n++) {
        await server.publish('chat')
        await server.publish('alerts')
        await sleep(5)
      }
      for (const [i, page] of pages.entries()) {
        await page.waitForFunction(n => window.sharedTest.received.filter(entry => entry.key !== 'clock').length >= n, 2 * TOTAL, { timeout: 20000 })
        const received = await page.evaluate(() => window.sharedTest.received)
        t.same(ofKey(received, 'chat'), expected(server.ids.chat, 'chat'), `tab ${i}: every chat message once, in order`)
        t.same(ofKey(received, 'alerts'), expected(server.ids.alerts, 'alerts'), `tab ${i}: every alert once, in order`)
        t.equal(await page.evaluate(() => window.sharedTest.stream.transport), 'poll')
        t.equal(await page.evaluate(() => document.querySelectorAll('iframe').length), 0, `tab ${i}: no frame`)
        t.same(problems(page), [], `tab ${i}: no console error`)
      }
      t.ok(server.kinds.every(kind => kind === 'poll json'), `every request a JSON poll: ${[...new Set(server.kinds)].join(', ')}`)
      t.ok(server.cursors.slice(1).some(cursor => cursor !== undefined && JSON.parse(cursor).chat !== undefined), 'polls resume from the JSON cursor')
    })

    t.test(`on ${host}: a tab rendered with a cursor for one key catches up on that key`, async t => {
      const server = await live(t)
      const context = await browser.context(t)
      const first = await context.page()
      await first.goto(pageUrl(host, server.port, { stream: '/live' }))
      await until(() => server.app.comet.stats().streams.open === 1, 'the shared stream')
      for (let n = 1; n <= 10; n++) await server.publish('chat')
      const producer = setInterval(() => { server.publish('chat').catch(() => {}) }, 50)
      t.teardown(() => clearInterval(producer))
      const joined = await context.page()
      await joined.goto(pageUrl(host, server.port, { stream: '/live', lastEventId: JSON.stringify({ chat: server.ids.chat[4] }) }))
      await until(() => server.ids.chat.length >= 40, '40 messages')
      clearInterval(producer)
      const total = server.ids.chat.length
      await joined.waitForFunction(n => window.sharedTest.received.filter(entry => entry.key === 'chat').length >= n, total - 5)
      t.same(ofKey(await joined.evaluate(() => window.sharedTest.received), 'chat'), expected(server.ids.chat, 'chat', 6), 'every chat message after its cursor once, in order')
      // (The leader's own reconnects, after rotations, send cursors of both keys.)
      t.ok(server.cursors.includes(JSON.stringify({ chat: server.ids.chat[4] })), 'it caught up on a connection of its own, from its cursor')
      await until(() => server.app.comet.stats().streams.open === 1, 'the end of its own connection')
      t.pass('then took the shared stream')
    })
  }
}, HOST_SETTINGS)
