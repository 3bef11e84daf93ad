// Under the plugin's default helmet policy, the browser runs each comet script as it arrives, while
// the document is still loading: the server sends each message only once the page has the one
// before, which can only finish if nothing waits for the end of the document (or for more bytes).
import t from 'tap'
import { EventEmitter, on } from 'node:events'
import { build, deferred, listen } from '../helpers.js'
import { eachBrowser } from './browser.js'
import { addParentPage, parentUrl } from './parent-page.js'

eachBrowser(t, (t, browser) => {
  t.test('each message runs as soon as it arrives, one at a time, with no console error or CSP violation', async t => {
    const { app } = await build(t)
    addParentPage(app)
    const sent = new EventEmitter()
    const listening = deferred()
    app.get('/stream', (request, reply) => reply.comet(({ signal }) => {
      const messages = on(sent, 'message', { signal })
      listening.resolve()
      return (async function * () {
        for await (const [message] of messages) yield message
      })()
    }, 'parent.cometMessage'))
    const origin = await listen(app)

    const page = await browser.page(t)
    await page.goto(parentUrl(origin, '/stream'))
    await listening.promise
    for (let i = 0; i < 10; i++) {
      sent.emit('message', { i })
      await page.waitForFunction(count => window.received.length === count, i + 1)
    }
    t.same(await page.evaluate(() => window.received.map(({ message }) => message)), Array.from({ length: 10 }, (_, i) => ({ i })), 'in order')
    const frame = await page.frame(url => url.endsWith('/stream'))
    t.equal(await frame?.evaluate(() => document.readyState), 'loading', 'and the comet document is still loading')
    t.same(page.problems, [], 'no console error, page error or CSP violation')
  })
})
