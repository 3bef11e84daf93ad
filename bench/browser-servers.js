'use strict'

// The servers of the browser benchmarks (browser.js, browser-memory.js): each serves one page that
// counts messages (GET /page, with /bench-page.js and the shipped client /comet/client.js, all
// external scripts so the page runs under the plugin's CSP) and one stream (GET /stream).
// Started through servers.js's start() (spec.scenario 'browser'), in a child process by default.
//
// spec.params: { n } messages in all; { gated: true }: nothing until the command 'go' (two tabs
// that share the stream are both there). The stream's source is an async generator yielding
// { n, t: 'tick tock' } as fast as backpressure lets it, from a counter shared by every request of
// the server: after a rotation the client's next document carries on where the last one stopped.
// After message n - 1 the source waits for the client to leave, so the last document stays open
// (and in the page) while the benchmark measures the renderer.

const fs = require('node:fs')
const path = require('node:path')
const { startFastify, startNodeHttp, scriptJson, waitDrain, COMET_DIST, COMET_DIST_BASELINE, BASELINE_BUILD, COMET_HEADERS } = require('./servers.js')

const CALLBACK = 'cometMessage'
const CLIENT_PATH = '/comet/client.js'
// The client as a page not served by the plugin gets it: the package's own file.
const CLIENT_SOURCE = fs.readFileSync(path.join(__dirname, '..', 'client', 'comet-client.js'), 'utf8')

const PAGE_HTML = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>fastify-comet browser benchmark</title><link rel="icon" href="data:,">
<script src="${CLIENT_PATH}"></script><script src="/bench-page.js"></script></head>
<body></body>
</html>
`

// The page: ?n= messages expected; ?kind=comet (the shipped client, FastifyComet.connect),
// script-per-message (the same, removing each script as it runs) or eventsource. The clock
// starts when the page opens the stream (after 'load') and stops at the n-th message (firstMs: at
// the first). Each message's n is checked against the count, so a lost or repeated message
// (across rotations) shows up. firstAt and doneAt: the first and n-th message on a clock every tab
// shares (performance.timeOrigin + now), to compare tabs that share one stream. Rotations are timed from a document's end ('load', the client's
// onClose) to the next document's first message. window.bench is what the benchmark reads.
const PAGE_SCRIPT = `'use strict'
;(function () {
  var params = new URLSearchParams(location.search)
  var n = Number(params.get('n'))
  var kind = params.get('kind')
  var bench = window.bench = { n: n, count: 0, outOfOrder: 0, started: 0, firstMs: undefined, ms: undefined, firstAt: undefined, doneAt: undefined, rotations: 0, rotationMs: 0 }
  var rotatedAt // when the last document ended with a rotation, until the next one's first message
  // ?work=N: the handler also runs a loop of N steps per message: a page slower than the wire
  var work = Number(params.get('work')) || 0
  var sink = 0
  function onMessage (message) {
    for (var i = 0; i < work; i++) sink = (sink + i) | 0
    if (message.n !== bench.count) bench.outOfOrder++
    if (++bench.count === 1) {
      bench.firstMs = performance.now() - bench.started
      bench.firstAt = performance.timeOrigin + performance.now()
    }
    if (bench.count === n) {
      bench.ms = performance.now() - bench.started
      bench.doneAt = performance.timeOrigin + performance.now()
    }
  }
  // One script per message (the format before issue 10): the shipped client then removed each
  // script once it had run, with what came before it; the client no longer does (the comet
  // document's helper does), so this page does it as the client did.
  var frame
  function removeDeliveredScript () {
    frame = frame || document.querySelector('iframe')
    var script = frame && frame.contentDocument && frame.contentDocument.currentScript
    var parent = script && script.parentNode
    if (!parent) return
    while (parent.firstChild !== script) parent.removeChild(parent.firstChild)
    parent.removeChild(script)
  }
  addEventListener('load', function () {
    bench.started = performance.now()
    if (kind === 'eventsource') {
      var source = new EventSource('/stream')
      source.onmessage = function (event) { onMessage(JSON.parse(event.data)) }
    } else {
      FastifyComet.connect('/stream', {
        callback: '${CALLBACK}',
        onMessage: kind === 'script-per-message' ? function (message) { removeDeliveredScript(); onMessage(message) } : onMessage,
        onOpen: function () {
          if (rotatedAt !== undefined) bench.rotationMs += performance.now() - rotatedAt
          rotatedAt = undefined
        },
        onClose: function (info) {
          if (info.reason !== 'rotated') return
          bench.rotations++
          rotatedAt = performance.now()
        }
      })
    }
  })
  // Live nodes in the page and in its frames' documents (what the DOM holds, not what awaits GC).
  bench.liveNodes = function () {
    var count = 0
    function walk (doc) {
      var walker = doc.createTreeWalker(doc, NodeFilter.SHOW_ALL)
      while (walker.nextNode()) count++
      var frames = doc.querySelectorAll('iframe')
      for (var i = 0; i < frames.length; i++) {
        var inner = frames[i].contentDocument
        if (inner) walk(inner)
      }
    }
    walk(document)
    return count
  }
})()
`

/** Message i: the issue's small JSON message. */
function tick (i) {
  return { n: i, t: 'tick tock' }
}

const identity = (message) => message

/** The source of one stream: the server's next messages, as fast as they are pulled; then it waits. */
async function * ticks (state, signal, wrap = identity) {
  await state.gate
  while (state.next < state.n && !signal.aborted) yield wrap(tick(state.next++))
  if (!signal.aborted) await new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
}

/**
 * Counts the bytes written on a stream's socket while its response lasts (status line, headers,
 * chunk framing and body), so bytes per message include what rotation and helmet add.
 */
function countWire (state, req, res) {
  const socket = req.socket
  const entry = { socket, start: socket.bytesWritten }
  state.wire.open.add(entry)
  state.wire.documents++
  res.once('close', () => {
    state.wire.open.delete(entry)
    state.wire.closed += socket.bytesWritten - entry.start
  })
}

function wireBytes (state) {
  let bytes = state.wire.closed
  for (const { socket, start } of state.wire.open) bytes += socket.bytesWritten - start
  return bytes
}

/** An AbortSignal that aborts when the client leaves (or the response ends). */
function signalOf (res) {
  const controller = new AbortController()
  res.once('close', () => controller.abort())
  return controller.signal
}

function addPage (app) {
  app.get('/page', (request, reply) => reply.type('text/html; charset=utf-8').send(PAGE_HTML))
  app.get('/bench-page.js', (request, reply) => reply.type('text/javascript; charset=utf-8').send(PAGE_SCRIPT))
}

/** The plugin as a user would register it, with `options` over its defaults; it serves the client. */
function cometServer (options, dist = COMET_DIST) {
  return (spec, state) => startFastify(async app => {
    await app.register(require(path.join(dist, 'index.js')), { ...options, clientPath: CLIENT_PATH })
    addPage(app)
    app.get('/stream', (request, reply) => {
      countWire(state, request.raw, reply.raw)
      return reply.comet(({ signal }) => ticks(state, signal), `parent.${CALLBACK}`)
    })
  })
}

// The format before issue 10: one <script> element per message (calling parent.cometMessage), no
// nonce, written in ~16 KiB writes as the plugin did; one document (no rotation). Its page
// removes each script after it ran, as the shipped client did then.
function oneScriptPerMessageServer (spec, state) {
  const prefix = `<script>parent.${CALLBACK}(`
  const suffix = ');</script>'
  return startNodeHttp(async (req, res) => {
    const url = req.url.split('?')[0]
    if (url === '/page') return send(res, 'text/html', PAGE_HTML)
    if (url === '/bench-page.js') return send(res, 'text/javascript', PAGE_SCRIPT)
    if (url === CLIENT_PATH) return send(res, 'text/javascript', CLIENT_SOURCE)
    if (url !== '/stream') return send(res, 'text/plain', 'not found', 404)
    countWire(state, req, res)
    res.writeHead(200, COMET_HEADERS)
    let pending = '<html><body>'
    for await (const message of ticks(state, signalOf(res))) {
      pending += prefix + scriptJson(message) + suffix
      // a full write, or the last message (the source then waits): the plugin did the same
      if (pending.length >= 16384 || state.next === state.n) {
        const ok = res.write(pending)
        pending = ''
        if (!ok) await waitDrain(res)
      }
    }
  })
}

// @fastify/sse 0.6 with its defaults: `data: JSON` events from the same generator.
function sseServer (spec, state) {
  return startFastify(async app => {
    await app.register(require('@fastify/sse'))
    addPage(app)
    app.get(CLIENT_PATH, (request, reply) => reply.type('text/javascript; charset=utf-8').send(CLIENT_SOURCE))
    app.get('/stream', { sse: 'only' }, async (request, reply) => {
      countWire(state, request.raw, reply.raw)
      const signal = signalOf(reply.raw)
      await reply.sse.send(ticks(state, signal, message => ({ data: message })))
    })
  })
}

function send (res, type, body, status = 200) {
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

/** What each competitor's page uses to receive: the shipped client, or EventSource. */
const KIND = {
  'one script per message': 'script-per-message',
  '@fastify/sse + EventSource': 'eventsource'
}

// The plugin's competitors, by their options; plugin defaults: helmet (CSP nonce), padding,
// heartbeat and rotation (maxBytes) as shipped.
const PLUGIN_OPTIONS = {
  'fastify-comet': {},
  'fastify-comet (maxBytes: Infinity)': { maxBytes: Infinity },
  'fastify-comet (helmet: false)': { helmet: false }
}

const COMPETITORS = {
  ...Object.fromEntries(Object.entries(PLUGIN_OPTIONS).map(([name, options]) => [name, cometServer(options)])),
  'one script per message': oneScriptPerMessageServer,
  '@fastify/sse + EventSource': sseServer
}

/** Starts one competitor; spec.options (plugin options) makes a fastify-comet server with those. */
async function start (spec) {
  // IPC carries JSON, which has no Infinity: browser-memory.js sends maxBytes 'Infinity' as a string
  const options = spec.options === undefined ? undefined : { ...spec.options, maxBytes: Number(spec.options.maxBytes) }
  const factory = options !== undefined ? cometServer(options) : competitor(spec.competitor)
  if (factory === undefined) throw new Error(`unknown browser competitor ${spec.competitor}`)
  let go
  const gate = spec.params.gated ? new Promise(resolve => { go = resolve }) : undefined
  const state = { n: spec.params.n, next: 0, gate, wire: { open: new Set(), closed: 0, documents: 0 } }
  const server = await factory(spec, state)
  return {
    port: server.port,
    close: server.close,
    command: async (cmd) => {
      if (cmd === 'wire') return { bytes: wireBytes(state), documents: state.wire.documents, pulled: state.next }
      if (cmd === 'go' && go !== undefined) {
        go()
        return true
      }
      throw new Error(`unknown command ${cmd}`)
    }
  }
}

/** A competitor's server; one named with BASELINE_BUILD appended: the plugin from COMET_DIST_BASELINE. */
function competitor (name) {
  if (!name.endsWith(BASELINE_BUILD)) return COMPETITORS[name]
  if (COMET_DIST_BASELINE === undefined) throw new Error(`${name} needs COMET_DIST_BASELINE`)
  const options = PLUGIN_OPTIONS[name.slice(0, -BASELINE_BUILD.length)]
  return options === undefined ? undefined : cometServer(options, COMET_DIST_BASELINE)
}

/** The page's URL for a competitor on a server; `work` slows its handler down (see the page). */
function pageUrl (port, competitor, n, work = 0) {
  return `http://127.0.0.1:${port}/page?n=${n}&kind=${KIND[competitor] ?? 'comet'}${work > 0 ? `&work=${work}` : ''}`
}

module.exports = { start, pageUrl, COMPETITORS, tick }
