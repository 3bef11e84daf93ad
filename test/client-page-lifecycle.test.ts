// The browser client and the page's life: a page frozen or put in the back/forward cache lets its
// connection go, and one restored or thawed reconnects at once, from its cursor.
import t from 'tap'
import { fakeBrowser, recorder } from './fake-browser.js'

t.test('back from the back/forward cache: a new connection at once, from the cursor; none while cached', async t => {
  const browser = fakeBrowser({ random: 0.5 })
  const { events, ...handlers } = recorder()
  browser.window.FastifyComet.connect('/events', handlers)
  browser.deliver('a', '1')
  browser.window.dispatch('pagehide', { persisted: true })
  t.equal(browser.frames().length, 0, 'the frame goes with the page into the cache')
  t.same(browser.delays(), [], 'no reconnect, no watchdog while cached')
  browser.window.dispatch('pageshow', { persisted: false })
  t.equal(browser.frames().length, 0, 'a first show is not a restore')
  browser.window.dispatch('pageshow', { persisted: true })
  t.equal(browser.frame().src, '/events?lastEventId=1', 'restored: at once, from the last id')
  browser.window.dispatch('freeze')
  t.equal(browser.frames().length, 0, 'a frozen page lets its frame go too')
  browser.window.dispatch('resume')
  t.equal(browser.frame().src, '/events?lastEventId=1', 'and comes back when thawed')
  t.notMatch(events, [['close']], 'none of it is a connection that ended')
})
