// Behind nginx that buffers whatever the app asks (X-Accel-Buffering ignored, 16 MiB of buffers,
// HTTP/1.0 to the app: bufferingLocation in test/nginx.ts), a forever document delivers nothing.
// The shipped client, with its defaults, notices (its probe stream delivers nothing) and polls;
// every message reaches the page exactly once, in order (those published while it probed too),
// and soon after its publish once it has noticed (fallsBackToPolling in fallback-page.ts).
import t from 'tap'
import { bufferingLocation, startNginx, withoutNginx } from '../nginx.js'
import { eachBrowser } from './browser.js'
import { fallsBackToPolling } from './fallback-page.js'

if (!withoutNginx(t)) {
  eachBrowser(t, (t, browser) => fallsBackToPolling(t, browser, {
    name: 'nginx ignoring X-Accel-Buffering (proxy_http_version 1.0, 16 MiB of buffers)',
    start: (t, origin) => startNginx(t, { server: bufferingLocation(origin) })
  }))
}
