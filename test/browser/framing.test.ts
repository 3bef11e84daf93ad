// The comet route may be framed by its own origin only (CSP frame-ancestors 'self', and
// X-Frame-Options SAMEORIGIN for browsers without it): a page on another origin frames it and
// gets nothing, the same page on the route's own origin gets every message.
import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { setInterval } from 'node:timers/promises'
import type { FastifyCometOptions } from '../../types/index.js'
import { build, listen } from '../helpers.js'
import { eachBrowser } from './browser.js'
import { addParentPage, parentUrl } from './parent-page.js'

/** The comet app (a message every 100 ms, for ever) and a second origin with no helmet at all. */
async function start (t: Test, options?: FastifyCometOptions): Promise<{ stream: string, streamsEnded: Array<Promise<void>>, origin: string, otherOrigin: string }> {
  const { app } = await build(t, options)
  addParentPage(app)
  const streamsEnded: Array<Promise<void>> = []
  app.get('/stream', (request, reply) => {
    const ended = reply.comet(async function * ({ signal }) {
      let count = 0
      const ticks = setInterval(100, undefined, { signal })
      for (;;) {
        await ticks.next() // rejects when the signal aborts, which ends the source
        yield count++
      }
    }, 'parent.cometMessage')
    streamsEnded.push(ended)
    return ended
  })
  const origin = await listen(app)
  const other = Fastify()
  t.teardown(() => other.close())
  addParentPage(other)
  return { stream: `${origin}/stream`, streamsEnded, origin, otherOrigin: await listen(other) }
}

eachBrowser(t, (t, browser) => {
  // Each browser says so in its own words: Chromium as a console error, Firefox as a page error.
  const cases = [
    {
      name: "CSP frame-ancestors 'self'",
      options: undefined,
      refusal: {
        chromium: /^console error: Framing '.+' violates the following Content Security Policy directive: "frame-ancestors 'self'"/,
        firefox: /^page error: Content-Security-Policy: .+ because it violates the following directive: “frame-ancestors 'self'”/
      }
    },
    {
      name: 'X-Frame-Options SAMEORIGIN alone',
      options: { helmet: { contentSecurityPolicy: false } },
      refusal: {
        chromium: /^console error: Refused to display '.+' in a frame because it set 'X-Frame-Options' to 'sameorigin'/,
        firefox: /^page error: The loading of “.+” in a frame is denied by “X-Frame-Options“ directive set to “sameorigin“/
      }
    }
  ]
  for (const { name, options, refusal } of cases) {
    t.test(`a page on another origin gets no message: ${name} blocks the frame`, async t => {
      const { stream, streamsEnded, otherOrigin } = await start(t, options)
      const page = await browser.page(t)
      await page.goto(parentUrl(otherOrigin, stream))
      const refused = await page.problem(refusal[browser.name])
      t.pass(`the browser logs the refusal: ${refused.trim()}`)
      await streamsEnded[0] // refused on its headers: the request has reached the route
      t.pass('the browser dropped the response, so the server ended the stream')
      t.equal(await page.evaluate(() => window.received.length), 0, 'the page received no message')
      t.same(page.problems, [refused], 'no other console error')
    })
  }

  t.test('the same page on the comet route\'s own origin gets the messages', async t => {
    const { origin } = await start(t)
    const page = await browser.page(t)
    await page.goto(parentUrl(origin, '/stream'))
    await page.waitForFunction(() => window.received.length >= 3)
    t.same((await page.evaluate(() => window.received)).slice(0, 3).map(({ message }) => message), [0, 1, 2])
    t.same(page.problems, [], 'no console error, page error or CSP violation')
  })
})
