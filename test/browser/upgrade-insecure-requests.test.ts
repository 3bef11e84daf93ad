// A plain-HTTP page browsed by host name (not a loopback address, which browsers trust) works
// under the plugin's policy, which leaves out helmet's `upgrade-insecure-requests`. With that
// directive, the browser rewrites every subresource to https and the page gets no script and no stream.
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyCometOptions } from '../../types/index.js'
import { build, listen } from '../helpers.js'
import { eachBrowser } from './browser.js'
import { addParentPage, parentUrl } from './parent-page.js'

const HOST = 'comet.test'

async function start (t: Test, options?: FastifyCometOptions): Promise<string> {
  const { app } = await build(t, options)
  addParentPage(app)
  app.get('/stream', (request, reply) => reply.comet(async function * () {
    for (let i = 0; i < 3; i++) {
      await sleep(50)
      yield i
    }
  }, 'parent.cometMessage'))
  const port = new URL(await listen(app)).port
  return `http://${HOST}:${port}`
}

// The host name resolves to loopback in each browser: a resolver rule in Chromium, a local domain
// (resolved like localhost) in Firefox.
eachBrowser(t, (t, browser) => {
  t.test(`a page at http://${HOST} loads its script and receives the stream under the plugin's defaults`, async t => {
    const origin = await start(t)
    const page = await browser.page(t)
    await page.goto(parentUrl(origin, '/stream'))
    await page.waitForFunction(() => window.received.length === 3)
    t.same(await page.evaluate(() => window.received.map(({ message }) => message)), [0, 1, 2])
    // Helmet's Cross-Origin-Opener-Policy has no effect on an untrustworthy (plain-HTTP, non-loopback)
    // origin, and Chromium says so as an error, for the page and for the comet frame. Expected: the
    // header still matters behind a TLS-terminating proxy, where the server speaks plain HTTP too.
    const ignoredCoop = /^console error: The Cross-Origin-Opener-Policy header has been ignored/
    t.same(page.problems.filter(problem => !ignoredCoop.test(problem)), [], 'no other console error, page error or CSP violation')
  })

  t.test('with helmet\'s upgrade-insecure-requests the same page gets neither (so the test above can fail)', async t => {
    const origin = await start(t, { helmet: { contentSecurityPolicy: { directives: { 'upgrade-insecure-requests': [] } } } })
    const page = await browser.page(t)
    await page.goto(parentUrl(origin, '/stream')) // waits for `load`, after the script failed
    t.same(page.requests.map(({ url }) => url).filter(url => url.endsWith('/parent.js')), [`${origin.replace('http:', 'https:')}/parent.js`], 'the script was requested over https only')
    t.equal(await page.evaluate(() => typeof window.cometMessage), 'undefined', 'so it never ran and no stream was opened')
  })
}, {
  chromiumArgs: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`],
  firefoxPrefs: { 'network.dns.localDomains': HOST }
})
