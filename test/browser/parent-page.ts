// The page the browser tests open: a page of its own, without the shipped client. One external
// script (no inline code, so it runs under the plugin's CSP) defines window.cometMessage, records
// each message with its id and, after `load`, frames the comet stream named in ?stream=. With
// ?controls, the callback also has a `cometControl` method, as the shipped client's has, which
// records the control messages.
import type { FastifyInstance } from 'fastify'

declare global {
  interface Window {
    received: Array<{ message: unknown, id: string | undefined }>
    controls: Array<{ type: string, detail: unknown }>
    cometMessage: (message: unknown, id?: string) => void
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
const params = new URLSearchParams(location.search)
window.received = []
window.controls = []
window.cometMessage = function (message, id) {
  window.received.push({ message, id })
}
if (params.has('controls')) {
  window.cometMessage.cometControl = function (type, detail) {
    window.controls.push({ type, detail })
  }
}
addEventListener('load', function () {
  const frame = document.createElement('iframe')
  frame.hidden = true
  frame.src = params.get('stream')
  document.body.append(frame)
})
`

/** Adds GET /parent (the page) and GET /parent.js (its script). */
export function addParentPage (app: FastifyInstance): void {
  app.get('/parent', (request, reply) => reply.type('text/html; charset=utf-8').send(HTML))
  app.get('/parent.js', (request, reply) => reply.type('text/javascript; charset=utf-8').send(SCRIPT))
}

/**
 * The page's URL on `origin`, framing `stream` (a path, or a URL on another origin); with
 * `controls`, its callback records control messages.
 */
export function parentUrl (origin: string, stream: string, { controls = false } = {}): string {
  return `${origin}/parent?stream=${encodeURIComponent(stream)}${controls ? '&controls' : ''}`
}
