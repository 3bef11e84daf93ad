// Channels that remember, in the browser with the plugin's defaults (helmet, CSP nonces, padding) and
// the shipped client: a channel publishing steadily across many rotations reaches the page with
// every message exactly once, in order; an id the channel cannot resume from gives onReset.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, deferred, listen } from '../helpers.js'
import { eachBrowser } from './browser.js'

declare global {
  interface Window {
    historyTest: { received: Array<{ message: unknown, id: string | undefined }>, resets: Array<{ lastEventId: string | undefined }>, closes: number }
  }
}

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>history</title><link rel="icon" href="data:,">
<script src="/comet/client.js"></script><script src="/app.js"></script></head><body></body></html>
`

const APP = `'use strict'
const params = new URLSearchParams(location.search)
const state = window.historyTest = { received: [], resets: [], closes: 0 }
FastifyComet.connect('/events', {
  lastEventId: params.get('lastEventId') || undefined,
  onMessage (message, id) { state.received.push({ message, id }) },
  onReset (info) { state.resets.push(info) },
  onClose () { state.closes++ }
})
`

async function server (t: Test, maxBytes: number): Promise<{ app: FastifyInstance, origin: string, subscribed: Promise<void> }> {
  const firstStream = deferred()
  const { app } = await build(t, { clientPath: '/comet/client.js' })
  app.get('/page', (request, reply) => reply.type('text/html; charset=utf-8').send(HTML))
  app.get('/app.js', (request, reply) => reply.type('text/javascript; charset=utf-8').send(APP))
  const channel = app.comet.channel<{ n: number, text: string }>({ name: 'events', history: 1000 })
  app.get('/events', (request, reply) => {
    const done = reply.comet(channel, { callback: 'parent.cometMessage', maxBytes })
    firstStream.resolve() // subscribed by now: reply.comet() subscribes before it returns
    return done
  })
  app.decorate('events', channel)
  return { app, origin: await listen(app), subscribed: firstStream.promise }
}

eachBrowser(t, (t, browser) => {
  t.test('a channel publishing across many rotations: every message exactly once, in order', async t => {
    const { app, origin, subscribed } = await server(t, 8192) // default padding (5 KiB): about 20 messages a document
    const channel = (app as unknown as { events: { publish: (m: { n: number, text: string }) => Promise<string> } }).events
    const page = await browser.page(t)
    await page.goto(`${origin}/page`)
    // A page without an id starts live: publishing starts once its first stream is subscribed.
    await subscribed
    const TOTAL = 400
    const ids: string[] = []
    for (let n = 1; n <= TOTAL; n++) {
      ids.push(await channel.publish({ n, text: 'about a hundred bytes of chat text, give or take, so that documents rotate often' }))
      await new Promise(resolve => setTimeout(resolve, 5)) // a steady rate, as a live feed has
    }
    await page.waitForFunction(n => window.historyTest.received.length >= n, TOTAL, { timeout: 30000 })
    const { received, resets, closes } = await page.evaluate(() => window.historyTest)
    t.ok(closes >= 5, `the client reconnected ${closes} times`)
    t.same(received.map(({ message }) => (message as { n: number }).n), Array.from({ length: TOTAL }, (_, i) => i + 1), 'each message once, in order')
    t.same(received.map(({ id }) => id), ids, 'with the ids publish() resolved with')
    t.same(resets, [], 'nothing was out of reach')
    t.same(page.problems, [], 'no console errors or CSP violations')
  })

  t.test('an id the channel cannot resume from: onReset, then live messages', async t => {
    const { app, origin } = await server(t, 131072)
    const channel = (app as unknown as { events: { publish: (m: { n: number, text: string }) => Promise<string> } }).events
    await channel.publish({ n: 1, text: 'before the page' })
    const page = await browser.page(t)
    await page.goto(`${origin}/page?lastEventId=from-another-life`)
    await page.waitForFunction(() => window.historyTest.resets.length === 1)
    const id = await channel.publish({ n: 2, text: 'live' })
    await page.waitForFunction(() => window.historyTest.received.length === 1)
    const { received, resets } = await page.evaluate(() => window.historyTest)
    t.same(resets, [{ lastEventId: 'from-another-life' }])
    t.same(received, [{ message: { n: 2, text: 'live' }, id }])
    t.same(page.problems, [], 'no console errors or CSP violations')
  })
})
