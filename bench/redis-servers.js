'use strict'

// The competitors of the Redis fan-out benchmark (bench/redis-fanout.js), one server instance per
// call to start(spec), in a child process (server-child.js with spec.module = 'redis-servers.js').
// spec.params: { redis: unix socket path of the benchmark's redis-server, channel: the name every
// instance shares, history: comet's (default HISTORY), recovery: socket.io's connection state
// recovery (bench/resume-storm.js); bench/redis-cluster.js, fastify-comet only: channels (names,
// served as GET /0, /1, ...), cluster (the nodes of a Redis Cluster, for the broker's `cluster`
// option instead of `url`) }. Every instance serves GET / (or socket.io) to subscribers;
// the client drives publishing on one of them with the `publish` command.
//
// Messages are { n, t, text: 'hello' }, t being process.hrtime in microseconds at the moment of the
// publish call, so a client on this machine can tell the publish-to-delivery latency of each one.

const path = require('node:path')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const { setTimeout: sleep } = require('node:timers/promises')
const {
  COMET_DIST, COMET_DIST_BASELINE, BASELINE_BUILD, cometRedisOf, COMET_OPTIONS, COMET_HEADERS, CALLBACK, startNodeHttp, startFastify, profileStart, profileStop
} = require('./servers.js')

// Keeps as much history as one measured publish sends: resuming is not measured here, but a
// channel on the broker must have a history, and XADD trims it on every message.
const HISTORY = 1000

/** The message a publisher sends, stamped when it is published. */
function stampedMessage (n) {
  return { n, t: Number(process.hrtime.bigint() / 1000n), text: 'hello' }
}

// ---------------------------------------------------------------------------------------------
// fastify-comet: in process (one instance) and on the Redis broker (as many as the client starts)

function cometServer ({ broker }) {
  return (spec, state, dist) => startFastify(async app => {
    const plugin = require(path.join(dist, 'index.js'))
    const options = { ...COMET_OPTIONS }
    const { redis, cluster, channels: names } = spec.params
    if (broker) options.broker = cometRedisOf(dist).cometRedis(cluster === undefined ? { url: redis } : { cluster })
    await app.register(plugin, options)
    if (names !== undefined) {
      // bench/redis-cluster.js: a channel per name, GET /N follows the Nth, message n goes to channel n mod their number
      const channels = names.map(name => app.comet.channel({ name, history: spec.params.history ?? HISTORY }))
      state.subscribers = () => channels.reduce((sum, channel) => sum + channel.size, 0)
      state.publish = (message) => channels[message.n % channels.length].publish(message)
      app.get('/:index', (request, reply) => reply.comet(channels[Number(request.params.index)], CALLBACK))
      return
    }
    // The same named channel with the same history either way, so both write ids (the same bytes).
    const channel = app.comet.channel({ name: spec.params.channel, history: spec.params.history ?? HISTORY })
    state.subscribers = () => channel.size
    state.publish = (message) => channel.publish(message)
    app.get('/', (request, reply) => reply.comet(channel, CALLBACK))
  })
}

// ---------------------------------------------------------------------------------------------
// The hand-written baseline: node:http responses, one ioredis subscriber per instance, and each
// message wrapped once per instance into a Buffer written to every response. The publisher sends
// the entry comet would write for the message (`1,MESSAGE,ID,`, an id as long as comet's), so each
// write is the script element comet writes without helmet: one script per write, same bytes.

const BATCH_PREFIX = Buffer.from('<script>__fastifyComet([')
const BATCH_SUFFIX = Buffer.from(']);</script>')
const BASELINE_EPOCH = 'b00000000000' // as long as comet's epochs (12 hex digits)

function baselineEntry (message) {
  return `1,${JSON.stringify(message)},"${BASELINE_EPOCH}-${message.n + 1}",`
}

async function startBaseline (spec, state) {
  const { Redis } = require('ioredis')
  const commands = new Redis(spec.params.redis)
  const subscriber = new Redis(spec.params.redis)
  const responses = new Set()
  subscriber.on('messageBuffer', (channel, entry) => {
    const chunk = Buffer.concat([BATCH_PREFIX, entry, BATCH_SUFFIX])
    for (const res of responses) res.write(chunk)
  })
  await subscriber.subscribe(spec.params.channel)
  state.subscribers = () => responses.size
  state.publish = (message) => commands.publish(spec.params.channel, baselineEntry(message))
  const server = await startNodeHttp(async (req, res) => {
    res.writeHead(200, COMET_HEADERS)
    res.write('<html><body>')
    res.socket.setNoDelay(true)
    responses.add(res)
    res.on('close', () => responses.delete(res))
  })
  return {
    port: server.port,
    close: () => {
      server.close()
      commands.disconnect()
      subscriber.disconnect()
    }
  }
}

// ---------------------------------------------------------------------------------------------
// socket.io with @socket.io/redis-streams-adapter: what a user would pick for the same job. Every
// broadcast is added to a Redis Stream that each instance reads with a blocking XREAD; clients use
// socket.io-client over WebSocket only.

async function startSocketIo (spec, state) {
  const http = require('node:http')
  const { once } = require('node:events')
  const { Redis } = require('ioredis')
  const { Server } = require('socket.io')
  const { createAdapter } = require('@socket.io/redis-streams-adapter')
  const redis = new Redis(spec.params.redis)
  const server = http.createServer()
  const io = new Server(server, {
    transports: ['websocket'],
    serveClient: false,
    // Every client lives in the one benchmark process, which socket.io-client keeps busy: with the
    // defaults (a ping every 25 s, 20 s to answer) a busy run ends with clients dropped by timeout.
    pingInterval: 120000,
    pingTimeout: 120000,
    adapter: createAdapter(redis, { streamName: spec.params.channel }),
    // resume-storm.js: a client that lost its connection gets what it missed on its next one
    ...(spec.params.recovery ? { connectionStateRecovery: { maxDisconnectionDuration: 120000, skipMiddlewares: true } } : {})
  })
  state.subscribers = () => io.of('/').sockets.size
  // io.emit() returns nothing to wait for: the adapter stores the packet, then delivers locally.
  state.publish = (message) => { io.emit('m', message) }
  server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
  await once(server, 'listening')
  return {
    port: server.address().port,
    close: () => {
      io.close()
      redis.disconnect()
    }
  }
}

const COMPETITORS = {
  'fastify-comet (in process)': cometServer({ broker: false }),
  'fastify-comet + Redis': cometServer({ broker: true }),
  'node:http + ioredis': startBaseline,
  'socket.io + redis-streams-adapter': startSocketIo
}

/**
 * Publishes messages from..from+count-1, message i when `interval` x i ms have passed since the
 * first (several at once when a timer fires late, so the average rate holds), then waits for every
 * publish to be acknowledged. Resolves with the hrtime (as strings) of the first and the last
 * publish, how many were refused, and the longest wait for one that was acknowledged.
 */
async function publishSteady (state, { from, count, interval }) {
  const step = interval * 1e6 // ns
  const acks = []
  let slowestAck = 0 // ms, of the publishes that resolved
  const timed = (ack) => {
    if (ack === undefined) return ack // socket.io: nothing to wait for
    const sent = process.hrtime.bigint()
    return ack.then(() => { slowestAck = Math.max(slowestAck, Number(process.hrtime.bigint() - sent) / 1e6) })
  }
  const start = process.hrtime.bigint()
  let last = start
  for (let i = 0; i < count;) {
    const due = Math.min(count, Math.floor(Number(process.hrtime.bigint() - start) / step) + 1)
    for (; i < due; i++) acks.push(timed(state.publish(stampedMessage(from + i))))
    last = process.hrtime.bigint()
    if (i < count) await sleep(Math.max(0, (i * step - Number(last - start)) / 1e6))
  }
  const refused = (await Promise.allSettled(acks)).filter(result => result.status === 'rejected')
  return {
    start: String(start),
    end: String(last),
    failed: refused.length,
    error: refused[0]?.reason?.message,
    slowestAck
  }
}

/**
 * Publishes messages from..from+count-1 as fast as acknowledgements allow: `window` publishers,
 * each publishing its next message once its last one is acknowledged and the event loop has
 * turned, so no more than `window` go out per turn (an in-process channel acknowledges at once;
 * socket.io's io.emit() returns nothing to wait for). Resolves as publishSteady() does.
 */
async function publishSaturated (state, { from, count, window }) {
  let slowestAck = 0 // ms, of the publishes that resolved
  let failed = 0
  let error
  let next = 0
  const start = process.hrtime.bigint()
  let last = start
  // One setImmediate for every publisher waiting: they publish together in the next turn (one
  // callback each would be one turn each for a channel in process, every message a write of its own).
  let turn
  const nextTurn = () => (turn ??= new Promise(resolve => setImmediate(() => { turn = undefined; resolve() })))
  const worker = async () => {
    while (next < count) {
      const sent = process.hrtime.bigint()
      const ack = state.publish(stampedMessage(from + next++))
      last = sent
      if (ack !== undefined) {
        try {
          await ack
          slowestAck = Math.max(slowestAck, Number(process.hrtime.bigint() - sent) / 1e6)
        } catch (err) {
          failed++
          error ??= err.message
        }
      }
      await nextTurn()
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
  return { start: String(start), end: String(last), failed, error, slowestAck }
}

async function start (spec) {
  // COMET_DIST_BASELINE: a competitor named with BASELINE_BUILD appended loads the plugin from there
  const twin = spec.competitor.endsWith(BASELINE_BUILD)
  if (twin && COMET_DIST_BASELINE === undefined) throw new Error(`${spec.competitor} needs COMET_DIST_BASELINE`)
  const factory = COMPETITORS[twin ? spec.competitor.slice(0, -BASELINE_BUILD.length) : spec.competitor]
  if (factory === undefined) throw new Error(`unknown competitor ${spec.competitor}`)
  const state = { subscribers: undefined, publish: undefined, profiler: undefined, loopDelay: monitorEventLoopDelay({ resolution: 10 }) }
  state.loopDelay.enable()
  const server = await factory(spec, state, twin ? COMET_DIST_BASELINE : COMET_DIST)
  return { port: server.port, close: server.close, command: (cmd, args) => command(cmd, state, args) }
}

async function command (cmd, state, args) {
  switch (cmd) {
    case 'subscribers': return state.subscribers()
    case 'publish': return args.window === undefined ? publishSteady(state, args) : publishSaturated(state, args)
    case 'cpu': {
      const { user, system } = process.cpuUsage()
      return user + system // µs
    }
    // How late this instance's event loop ran (ms) since the last reset: a busy instance answers late,
    // reads its Redis replies late, and its own timers fire late.
    case 'loop-delay': {
      const delay = state.loopDelay
      const result = { max: delay.max / 1e6, p99: delay.percentile(99) / 1e6 }
      if (args?.reset) delay.reset()
      return result
    }
    case 'profile-start': return profileStart(state)
    case 'profile-stop': return profileStop(state, args)
    default: throw new Error(`unknown command ${cmd}`)
  }
}

module.exports = { start, COMPETITORS, HISTORY, publishSteady }
