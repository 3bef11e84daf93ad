// Behind a proxy that buffers each response whole until it ends (test/buffering-proxy.ts, as an
// antivirus scanner does), a forever document delivers nothing. The shipped client, with its
// defaults, notices (its probe stream delivers nothing) and polls; every message reaches the page
// exactly once, in order (those published while it probed too), and soon after its publish once
// it has noticed (fallsBackToPolling in fallback-page.ts).
import t from 'tap'
import { startBufferingProxy } from '../buffering-proxy.js'
import { eachBrowser } from './browser.js'
import { fallsBackToPolling } from './fallback-page.js'

eachBrowser(t, (t, browser) => fallsBackToPolling(t, browser, {
  name: 'a proxy that buffers each response whole',
  start: async (t, origin) => (await startBufferingProxy(t, origin)).url
}))
