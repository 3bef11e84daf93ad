// Under the plugin's default helmet policy, the browser runs each comet script as it arrives: ten
// messages sent 100 ms apart arrive in order and spread out over time, not bunched at the end.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, listen } from '../helpers.js'
import { eachBrowser } from './browser.js'
import { addParentPage, parentUrl } from './parent-page.js'

eachBrowser(t, (t, browser) => {
  t.test('messages sent 100 ms apart arrive one by one, in order, with no console error or CSP violation', async t => {
    const { app } = await build(t)
    addParentPage(app)
    app.get('/stream', (request, reply) => reply.comet(async function * () {
      for (let i = 0; i < 10; i++) {
        await sleep(100)
        yield { i }
      }
    }, 'parent.cometMessage'))
    const origin = await listen(app)

    const page = await browser.page(t)
    await page.goto(parentUrl(origin, '/stream'))
    await page.waitForFunction(() => window.received.length === 10)
    const received = await page.evaluate(() => window.received)

    t.same(received.map(({ message }) => message), Array.from({ length: 10 }, (_, i) => ({ i })), 'in order')
    const spread = received[9].at - received[0].at
    t.ok(spread >= 500, `first to last arrival took ${Math.round(spread)} ms (at least 500)`)
    for (let i = 1; i < 10; i++) t.ok(received[i].at > received[i - 1].at, `message ${i} after message ${i - 1}`)
    t.same(page.problems, [], 'no console error, page error or CSP violation')
  })
})
