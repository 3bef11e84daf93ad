'use strict'

// The competitors: one HTTP server per call to start(), serving GET / for one scenario.
// Used inside a child process (server-child.js) or in the client's own process (--inproc).
//
// Scenarios (spec.scenario) and their sources:
//   throughput  params.n messages, yielded as fast as they are pulled
//   latency     params.n messages, one every params.interval ms; the yield time of each is kept
//   slow        never ends; counts the items pulled
//   idle        never yields anything
//   fanout      no source: every open response subscribes to one broadcaster, and the client
//               drives publishing with the `publish` command (publishFanout below)
//   browser     a page and a stream for a browser (bench/browser-servers.js has these competitors)
// The `3 channels` competitors serve the same routes in every scenario (see threeChannels).

const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { once } = require('node:events')
const { setTimeout: sleep } = require('node:timers/promises')

const CALLBACK = 'cb'
const SCRIPT_PREFIX = `<script>${CALLBACK}(`
const SCRIPT_SUFFIX = ');</script>'
const BATCH_CHARS = 16384

// The same escaping as lib/encode.ts, so the node:http baselines send byte-identical scripts.
const SCRIPT_UNSAFE = /[<>&\u2028\u2029]/g
const SCRIPT_ESCAPES = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' }
const escapeUnsafe = (char) => SCRIPT_ESCAPES[char]

/** A message's JSON, safe inside a <script> element (the old plugin's encoding). */
function scriptJson (message) {
  return JSON.stringify(message).replace(SCRIPT_UNSAFE, escapeUnsafe)
}

function formatScript (message) {
  return SCRIPT_PREFIX + scriptJson(message) + SCRIPT_SUFFIX
}

const COMET_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-cache, no-store, no-transform, must-revalidate, max-age=0',
  'x-accel-buffering': 'no'
}

/** Message i of the fan-out scenario: always a small object. */
function fanoutMessage (i) {
  return { n: i, text: 'hello' }
}

/** Message i of every other scenario: a short string and a small object, alternating. */
function messageAt (i) {
  return (i & 1) === 0 ? 'hello' : { n: i, text: 'hello' }
}

const identity = (message) => message

/**
 * The async generator every competitor consumes. `wrap` turns a message into what the plugin
 * expects (an SSE event object); `state` collects what the client asks for afterwards.
 */
function makeSource (scenario, params, state, wrap = identity) {
  switch (scenario) {
    case 'throughput': return (async function * throughput () {
      for (let i = 0; i < params.n; i++) yield wrap(messageAt(i))
    })()
    case 'latency': return (async function * latency () {
      for (let i = 0; i < params.n; i++) {
        await sleep(params.interval)
        state.yields.push(process.hrtime.bigint())
        yield wrap(messageAt(i))
      }
    })()
    case 'slow': return (async function * slow () {
      for (let i = 0; ; i++) {
        state.pulled++
        yield wrap(messageAt(i))
      }
    })()
    case 'idle': return pendingSource()
    default: throw new Error(`unknown scenario ${scenario}`)
  }
}

/** An async iterable whose first next() never settles: the cheapest possible idle source. */
function pendingSource () {
  return { [Symbol.asyncIterator] () { return { next: () => new Promise(noop) } } }
}

/** The idiomatic idle source: a generator that waits for the stream's AbortSignal. */
async function * untilAborted (signal) {
  if (!signal.aborted) await new Promise(resolve => signal.addEventListener('abort', resolve, { once: true }))
}

function noop () {}

/** Remembers the newest response (for the slow-consumer sampler) and every open one. */
function track (state, res) {
  state.last = res
  state.open.add(res)
  res.on('close', () => state.open.delete(res))
}

// ---------------------------------------------------------------------------------------------
// node:http competitors

function perMessageHandler (spec, state) {
  if (spec.scenario === 'fanout') return fanoutHandler(state)
  return async (req, res) => {
    track(state, res)
    res.writeHead(200, COMET_HEADERS)
    res.write('<html><body>')
    if (spec.scenario === 'idle') return // hold the open response, nothing else
    let closed = false
    res.on('close', () => { closed = true })
    for await (const message of makeSource(spec.scenario, spec.params, state)) {
      if (closed) break
      if (!res.write(formatScript(message))) await waitDrain(res)
    }
    res.end()
  }
}

function handCoalescedHandler (spec, state) {
  return async (req, res) => {
    track(state, res)
    res.writeHead(200, COMET_HEADERS)
    let pending = '<html><body>'
    if (spec.scenario === 'idle') { res.write(pending); return }
    let closed = false
    res.on('close', () => { closed = true })
    for await (const message of makeSource(spec.scenario, spec.params, state)) {
      if (closed) break
      pending += formatScript(message)
      if (pending.length >= BATCH_CHARS) {
        const ok = res.write(pending)
        pending = ''
        if (!ok) await waitDrain(res)
      }
    }
    if (pending !== '') res.write(pending)
    res.end()
  }
}

// Fan-out baseline: the loop one would write by hand. Each message is encoded once into a Buffer
// (byte-identical to the plugin's scripts without helmet) and written to every open response.
// No backpressure: a slow client's response buffers in memory (the plugin bounds it with maxQueue).
function fanoutHandler (state) {
  const subscribers = new Set()
  state.subscribers = () => subscribers.size
  state.broadcast = (message) => {
    const buf = Buffer.from(formatScript(message))
    for (const res of subscribers) res.write(buf)
  }
  return async (req, res) => {
    track(state, res)
    res.writeHead(200, COMET_HEADERS)
    res.write('<html><body>')
    subscribers.add(res)
    res.on('close', () => subscribers.delete(res))
  }
}

/**
 * Publishes messages from..from+count-1 through state.broadcast, `burst` of them per turn of the
 * event loop (setImmediate in between, so I/O runs), as fast as the broadcaster takes them.
 * Resolves with the hrtime (as strings) just before the first publish and just after the last.
 */
async function publishFanout (state, { from, count, burst }) {
  const broadcast = state.broadcast
  const start = process.hrtime.bigint()
  for (let i = 0; i < count; i += burst) {
    if (i > 0) await new Promise(setImmediate)
    const end = Math.min(count, i + burst)
    for (let j = i; j < end; j++) broadcast(fanoutMessage(from + j))
  }
  return { start: String(start), end: String(process.hrtime.bigint()) }
}

/** Resolves on 'drain', or on 'close' so a gone client cannot leave the loop waiting forever. */
function waitDrain (res) {
  return new Promise(resolve => {
    const done = () => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.on('drain', done)
    res.on('close', done)
  })
}

async function startNodeHttp (handler) {
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    handler(req, res).catch(err => {
      console.error(err)
      res.destroy()
    })
  })
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
  await once(server, 'listening')
  return {
    port: server.address().port,
    close: () => { server.closeAllConnections(); server.close() }
  }
}

// ---------------------------------------------------------------------------------------------
// Fastify competitors

async function startFastify (setup) {
  const Fastify = require('fastify')
  const app = Fastify({ logger: false })
  await setup(app)
  await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
  return {
    port: app.server.address().port,
    close: () => { app.server.closeAllConnections(); return app.close() }
  }
}

/**
 * The built plugin, as a user would load it: ../dist (`npm run build` first), or the build in
 * $COMET_DIST, to measure another version (e.g. a commit exported and built elsewhere).
 */
const COMET_DIST = path.resolve(process.env.COMET_DIST || path.join(__dirname, '..', 'dist'))

/**
 * fastify-comet/redis from a build: dist/redis/index.js since the Redis code has its own folder,
 * dist/redis.js in a build from before (a baseline build may be either).
 */
function cometRedisOf (dist) {
  const folder = path.join(dist, 'redis', 'index.js')
  return require(fs.existsSync(folder) ? folder : path.join(dist, 'redis.js'))
}

/**
 * COMET_DIST_BASELINE=/other/dist measures a second build in the same run: every fastify-comet
 * competitor gets a twin, named with BASELINE_BUILD appended, that loads the plugin from there.
 */
const COMET_DIST_BASELINE = process.env.COMET_DIST_BASELINE ? path.resolve(process.env.COMET_DIST_BASELINE) : undefined
const BASELINE_BUILD = ' [baseline build]'

/** `names`, each fastify-comet competitor followed by its baseline-build twin when COMET_DIST_BASELINE is set. */
function withBaselineBuild (names) {
  if (COMET_DIST_BASELINE === undefined) return names
  return names.flatMap(name => name.startsWith('fastify-comet') ? [name, name + BASELINE_BUILD] : [name])
}

const COMET_OPTIONS = { padding: 0, maxBytes: Infinity }

/**
 * A Fastify app with the built plugin. `idleSourceOf(app)`, when given, makes the source every
 * idle stream reads (called once per server, so a channel can be shared by every stream).
 */
function cometServer (options, idleSourceOf) {
  return (spec, state, dist) => startFastify(async app => {
    await app.register(require(path.join(dist, 'index.js')), options)
    if (spec.scenario === 'fanout') {
      // one channel, default maxQueue (1,024 messages a subscriber may hold unwritten)
      const channel = app.comet.channel()
      state.subscribers = () => channel.size
      state.broadcast = (message) => channel.publish(message)
      app.get('/', (request, reply) => {
        track(state, reply.raw)
        return reply.comet(channel, CALLBACK)
      })
      return
    }
    const idleSource = spec.scenario === 'idle' && idleSourceOf !== undefined ? idleSourceOf(app) : undefined
    app.get('/', (request, reply) => {
      track(state, reply.raw)
      const source = idleSource ?? makeSource(spec.scenario, spec.params, state)
      return reply.comet(source, CALLBACK)
    })
  })
}

/**
 * Three channels a, b and c (no history) on one server, for the multiplexed-stream benchmarks
 * (bench/multiplex.js): GET / is one stream of all three, `reply.comet({ a, b, c }, 'cb')`, and
 * GET /a, /b and /c one stream of that channel. Fan-out publishes to `a`, or with `inTurn`
 * message n to channel n % 3, so a multiplexed stream switches keys at every message.
 */
function threeChannels ({ inTurn }) {
  return (spec, state, dist) => startFastify(async app => {
    await app.register(require(path.join(dist, 'index.js')), COMET_OPTIONS)
    const a = app.comet.channel()
    const b = app.comet.channel()
    const c = app.comet.channel()
    const single = new Map([['a', a], ['b', b], ['c', c]])
    const inOrder = [a, b, c]
    state.subscribers = () => a.size // every stream but those of /b and /c holds a
    state.broadcast = inTurn ? (message) => inOrder[message.n % 3].publish(message) : (message) => a.publish(message)
    app.get('/', (request, reply) => {
      track(state, reply.raw)
      return reply.comet({ a, b, c }, CALLBACK)
    })
    app.get('/:key', (request, reply) => {
      const channel = single.get(request.params.key)
      if (channel === undefined) return reply.code(404).send()
      track(state, reply.raw)
      return reply.comet(channel, CALLBACK)
    })
  })
}

const COMPETITORS = {
  // (a) baseline: one res.write per message (fanout scenario: the hand-written broadcast loop,
  // fanoutHandler; bench/fanout.js calls it `node:http loop`)
  'per-message': (spec, state) => startNodeHttp(perMessageHandler(spec, state)),

  // (b) the loop an expert would write by hand
  'hand-coalesced': (spec, state) => startNodeHttp(handCoalescedHandler(spec, state)),

  // (c) the plugin under test, with its defaults (it registers @fastify/helmet: security headers
  // and a CSP nonce on every script; 20 s heartbeat) except: no padding, and no maxBytes
  // rotation (by default a stream ends after 8 MiB and the browser reconnects), since every
  // scenario here is about one long stream
  'fastify-comet': cometServer(COMET_OPTIONS),

  // the same without helmet: byte-identical scripts to the node:http baselines
  'fastify-comet (helmet: false)': cometServer({ ...COMET_OPTIONS, helmet: false }),

  // the idiomatic idle source: a generator that waits for the stream's AbortSignal
  'fastify-comet (signal source)': cometServer(COMET_OPTIONS, () => ({ signal }) => untilAborted(signal)),

  // every stream subscribed to one shared channel that never publishes
  'fastify-comet (channel source)': cometServer(COMET_OPTIONS, app => app.comet.channel()),

  // three channels, multiplexed at / and one by one at /a, /b, /c (threeChannels)
  'fastify-comet (3 channels)': threeChannels({ inTurn: false }),
  'fastify-comet (3 channels, published in turn)': threeChannels({ inTurn: true }),

  // Fastify without any plugin, holding the hijacked response: separates Fastify's cost from ours
  'fastify hijack (no plugin)': (spec, state) => startFastify(async app => {
    app.get('/', (request, reply) => {
      reply.hijack()
      track(state, reply.raw)
      reply.raw.writeHead(200, COMET_HEADERS)
      reply.raw.write('<html><body>')
    })
  }),

  // (d) @fastify/sse with its defaults (30 s heartbeat): reply.sse.send(asyncIterable) of
  // { data } events, JSON.stringify serializer
  '@fastify/sse': (spec, state) => startFastify(async app => {
    await app.register(require('@fastify/sse'))
    if (spec.scenario === 'fanout') {
      // Broadcasting as its API allows: keep each reply open, send every message to every reply.
      // send() serializes per reply; its promise is not awaited (one slow client must not hold
      // up the others), only caught.
      const subscribers = new Set()
      state.subscribers = () => subscribers.size
      state.broadcast = (message) => {
        const event = { data: message }
        for (const reply of subscribers) reply.sse.send(event).catch(noop)
      }
      app.get('/', { sse: 'only' }, async (request, reply) => {
        track(state, reply.raw)
        reply.sse.keepAlive()
        await reply.sse.send({ data: 'open' }) // commits the headers: the client counts this event
        subscribers.add(reply)
        reply.sse.onClose(() => subscribers.delete(reply))
      })
      return
    }
    app.get('/', { sse: 'only' }, async (request, reply) => {
      track(state, reply.raw)
      if (spec.scenario === 'idle') {
        // the documented way to hold a live connection open after the handler returns
        reply.sse.keepAlive()
        await reply.sse.send({ data: 'open' })
        return
      }
      await reply.sse.send(makeSource(spec.scenario, spec.params, state, message => ({ data: message })))
    })
  }),

  // (e) fastify-sse-v2: reply.sse(asyncIterable) of { data: string } events
  'fastify-sse-v2': (spec, state) => startFastify(async app => {
    await app.register(require('fastify-sse-v2').FastifySSEPlugin, { retryDelay: false })
    app.get('/', (request, reply) => {
      track(state, reply.raw)
      reply.sse(makeSource(spec.scenario, spec.params, state, message => ({ data: JSON.stringify(message) })))
    })
  })
}

/**
 * Starts one competitor. Returns its port, a command function the client drives it with
 * (stats, memory, sample) and close().
 */
async function start (spec) {
  if (spec.scenario === 'browser') return require('./browser-servers.js').start(spec)
  const twin = spec.competitor.endsWith(BASELINE_BUILD)
  if (twin && COMET_DIST_BASELINE === undefined) throw new Error(`${spec.competitor} needs COMET_DIST_BASELINE`)
  const factory = COMPETITORS[twin ? spec.competitor.slice(0, -BASELINE_BUILD.length) : spec.competitor]
  if (factory === undefined) throw new Error(`unknown competitor ${spec.competitor}`)
  const state = { yields: [], pulled: 0, last: undefined, open: new Set(), subscribers: undefined, broadcast: undefined }
  const server = await factory(spec, state, twin ? COMET_DIST_BASELINE : COMET_DIST)
  return {
    port: server.port,
    close: server.close,
    command: (cmd, args) => command(cmd, state, args)
  }
}

async function command (cmd, state, args) {
  switch (cmd) {
    case 'subscribers': return state.subscribers?.() ?? 0
    case 'publish': return publishFanout(state, args)
    case 'profile-start': return profileStart(state)
    case 'profile-stop': return profileStop(state, args)
    case 'reset':
      state.yields = []
      state.pulled = 0
      return true
    case 'yields': return state.yields.map(String)
    case 'open': return state.open.size
    case 'cpu': {
      const { user, system } = process.cpuUsage()
      return user + system // µs, this whole process (with --inproc: the client too)
    }
    case 'sample': {
      const res = state.last
      const socketQueued = res?.socket ? res.socket.writableLength : 0
      return {
        pulled: state.pulled,
        // ServerResponse#writableLength already includes the socket's queue
        buffered: res ? res.writableLength : 0,
        socketQueued,
        heapUsed: process.memoryUsage().heapUsed
      }
    }
    case 'snapshot': {
      // a heap snapshot after the same GC as 'memory' (bench/heap.js reads it)
      await command('memory', state)
      return require('node:v8').writeHeapSnapshot(args.file)
    }
    case 'memory': {
      if (typeof global.gc !== 'function') throw new Error('memory needs --expose-gc')
      for (let i = 0; i < 4; i++) {
        global.gc()
        await new Promise(setImmediate)
      }
      const { heapUsed, rss, external, arrayBuffers } = process.memoryUsage()
      return { heapUsed, rss, external, arrayBuffers }
    }
    default: throw new Error(`unknown command ${cmd}`)
  }
}

// A CPU profile of a span the client chooses (e.g. only the publishes), through the inspector.
async function profileStart (state) {
  const { Session } = require('node:inspector')
  const session = new Session()
  session.connect()
  const post = (method, params) => new Promise((resolve, reject) => {
    session.post(method, params, (err, result) => err ? reject(err) : resolve(result))
  })
  await post('Profiler.enable')
  await post('Profiler.start')
  state.profiler = { session, post }
  return true
}

async function profileStop (state, { file }) {
  const { session, post } = state.profiler
  const { profile } = await post('Profiler.stop')
  session.disconnect()
  state.profiler = undefined
  require('node:fs').writeFileSync(file, JSON.stringify(profile))
  return file
}

module.exports = {
  start,
  startFastify,
  startNodeHttp,
  profileStart,
  profileStop,
  COMPETITORS,
  COMET_DIST,
  cometRedisOf,
  COMET_DIST_BASELINE,
  BASELINE_BUILD,
  withBaselineBuild,
  COMET_OPTIONS,
  COMET_HEADERS,
  CALLBACK,
  formatScript,
  scriptJson,
  waitDrain,
  messageAt,
  fanoutMessage
}
