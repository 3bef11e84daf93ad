// The page the browser tests open: one external script (no inline code, so it runs under the
// plugin's CSP) that defines window.cometMessage, records each message with its arrival time and,
// after `load`, frames the comet stream named in ?stream=.
import type { FastifyInstance } from 'fastify'

declare global {
  interface Window {
    received: Array<{ message: unknown, at: number }>
    cometMessage: (message: unknown) => void
    pwned?: unknown
  }
}

const HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>comet test</title><link rel="icon" href="data:,"><script src="/parent.js"></script></head>
<body></body>
</html>
`

const SCRIPT = `'use strict'
window.received = []
window.cometMessage = function (message) {
  window.received.push({ message, at: performance.now() })
}
addEventListener('load', function () {
  const frame = document.createElement('iframe')
  frame.hidden = true
  frame.src = new URLSearchParams(location.search).get('stream')
  document.body.append(frame)
})
`

/** Adds GET /parent (the page) and GET /parent.js (its script). */
export function addParentPage (app: FastifyInstance): void {
  app.get('/parent', (request, reply) => reply.type('text/html; charset=utf-8').send(HTML))
  app.get('/parent.js', (request, reply) => reply.type('text/javascript; charset=utf-8').send(SCRIPT))
}

/** The page's URL on `origin`, framing `stream` (a path, or a URL on another origin). */
export function parentUrl (origin: string, stream: string): string {
  return `${origin}/parent?stream=${encodeURIComponent(stream)}`
}
