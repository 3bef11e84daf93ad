'use strict'

// A resume storm (issue 18): every client of a deploy coming back at once. INSTANCES server
// instances (child processes, bench/redis-servers.js) share one redis-server of our own; their
// clients were away while MESSAGES messages were published on instance 1, and all reconnect in
// the same tick, each to its instance, to resume from the oldest of those messages. Measured: from
// the reconnects until every client has every message it missed (and the median client), the
// CPU of the instances and of redis-server meanwhile. Competitors:
//   fastify-comet + Redis               a channel with `history: MESSAGES`; a client resumes with
//                                       ?lastEventId= (the id before the first missed message),
//                                       nothing is kept per client on the server between connections
//   socket.io + redis-streams-adapter   connectionStateRecovery: the clients were connected, heard
//                                       the message before the first missed one, lost their
//                                       transport (a session per client kept in Redis), reconnect
// COMET_DIST_BASELINE adds a twin of the comet competitor built from there. Only when named:
//   ulimit -n 5000; node bench/run.js resume-storm
// Skipped, with one line, when redis-server is not installed.

const { setTimeout: sleep } = require('node:timers/promises')
const { startServer, connect, request, median, percentile, orderFor, table, fmt, fmtInt, fdLimit, log } = require('./common.js')
const { findRedisServer, startRedis, StampedSubscriber, INSTALL_HINT } = require('./redis-fanout.js')
const { COMET_DIST_BASELINE, BASELINE_BUILD } = require('./servers.js')

const COMET = 'fastify-comet + Redis'
const TWIN = COMET_DIST_BASELINE === undefined ? undefined : COMET + BASELINE_BUILD
const SOCKET_IO = 'socket.io + redis-streams-adapter'
const COMPETITORS = [COMET, ...(TWIN === undefined ? [] : [TWIN]), SOCKET_IO]
const CHANNEL = 'storm'
const INSTANCES = 2
const STAMP = Buffer.from('"t":') // once in every message (redis-servers.js stampedMessage)
const CONCURRENCY = 100 // socket.io clients connecting at a time before the storm
const TIMEOUT = 120000

function settings (quick) {
  return { perInstance: quick ? 25 : 500, messages: quick ? 100 : 1000 }
}

async function until (what, check, ms = 30000) {
  const deadline = Date.now() + ms
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms / 1000} s`)
    await sleep(50)
  }
}

/** Resolves once every client has `messages` since the storm began: { last, each } in ms after `start`. */
function everyoneCaughtUp (clients, messages, start) {
  return new Promise((resolve, reject) => {
    const each = []
    const timer = setTimeout(() => reject(new Error(`${clients.length - each.length} clients not caught up in ${TIMEOUT / 1000} s`)), TIMEOUT)
    const fail = (err) => { clearTimeout(timer); reject(err) }
    for (const c of clients) {
      c.onFail = fail
      c.target = messages
      c.onTarget = () => {
        each.push(Number(process.hrtime.bigint() - start) / 1e6)
        if (each.length === clients.length) { clearTimeout(timer); resolve({ last: Math.max(...each), each }) }
      }
    }
  })
}

// ---------------------------------------------------------------------------------------------
// fastify-comet: a fresh GET with the cursor, on a raw socket counting messages

/** Opens every stream in the same tick; the counting starts with the response. */
async function cometStorm (servers, perInstance, lastEventId, messages, clients) {
  const path = `/?lastEventId=${encodeURIComponent(lastEventId)}`
  const start = process.hrtime.bigint()
  const sockets = await Promise.all(servers.flatMap(server => Array.from({ length: perInstance }, () => connect(server.port))))
  for (const socket of sockets) {
    const client = new StampedSubscriber(socket, STAMP, 0)
    clients.push(client)
    socket.write(request(path))
  }
  return { clients, start, caughtUp: everyoneCaughtUp(clients, messages, start) }
}

const ID = /"([0-9a-f]+-[0-9]+)",\]\);<\/script>/

/** The id of the next message published, as a client reads it from its stream. */
async function nextId (server, publish) {
  const socket = await connect(server.port)
  try {
    let text = ''
    const id = new Promise((resolve, reject) => {
      socket.on('data', chunk => {
        text += chunk.toString('latin1')
        const match = ID.exec(text)
        if (match !== null && text.includes('"t":')) resolve(match[1])
      })
      socket.once('close', () => reject(new Error(`no message id in the stream: ${text.slice(-300)}`)))
    })
    socket.write(request('/'))
    await until('a live stream on the comet instance', async () => await server.call('subscribers') === 1)
    await publish()
    return await id
  } finally {
    socket.destroy()
  }
}

async function measureComet (competitor, { servers, perInstance, messages, redis, clients }) {
  // the message before the storm's first: the clients heard it, and its id, before they went away
  const lastEventId = await nextId(servers[0], () => servers[0].call('publish', { from: 0, count: 1, interval: 1 }))
  const published = await servers[0].call('publish', { from: 1, count: messages, interval: 1 })
  if (published.failed > 0) throw new Error(`${competitor}: ${published.failed} publishes failed (${published.error})`)
  return storm(servers, redis, () => cometStorm(servers, perInstance, lastEventId, messages, clients))
}

// ---------------------------------------------------------------------------------------------
// socket.io: connected clients lose their transport, then reconnect with their session

class RecoveringClient {
  constructor (socket) {
    this.socket = socket
    this.count = 0
    this.target = Infinity
    this.onTarget = undefined
    this.onFail = undefined
    this.away = false
    socket.on('m', () => {
      if (++this.count === this.target) this.onTarget()
    })
    socket.on('disconnect', reason => {
      if (!this.away) this.onFail?.(new Error(`socket.io client disconnected (${reason}) after ${this.count} messages`))
    })
  }

  /** Drops the WebSocket, as a network would: the server keeps the session. */
  drop () {
    this.away = true
    this.socket.io.engine.close()
  }

  reconnect () {
    this.away = false
    this.count = 0
    this.socket.once('connect', () => {
      if (!this.socket.recovered) this.onFail?.(new Error('socket.io client reconnected without its session (not recovered)'))
    })
    this.socket.connect()
  }

  close () {
    this.away = true
    this.socket.disconnect()
  }
}

function connectSocketIo (port) {
  const { io } = require('socket.io-client')
  const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 30000 })
  return new Promise((resolve, reject) => {
    socket.once('connect', () => { socket.off('connect_error', reject); resolve(new RecoveringClient(socket)) })
    socket.once('connect_error', err => { socket.disconnect(); reject(err) })
  })
}

async function measureSocketIo (competitor, { servers, perInstance, messages, redis, clients }) {
  for (const server of servers) {
    for (let i = 0; i < perInstance; i += CONCURRENCY) {
      clients.push(...await Promise.all(Array.from({ length: Math.min(CONCURRENCY, perInstance - i) }, () => connectSocketIo(server.port))))
    }
  }
  // the message before the storm's first, until every client has one (an instance reads the
  // stream from `$` once its polling has begun), then until nothing more arrives
  let sent = 0
  await until('every socket.io client hears a message', async () => {
    await servers[0].call('publish', { from: sent++, count: 1, interval: 1 })
    await sleep(50)
    return clients.every(c => c.count > 0)
  })
  for (let total = -1; ;) {
    const now = clients.reduce((sum, c) => sum + c.count, 0)
    if (now === total) break
    total = now
    await sleep(200)
  }
  for (const c of clients) c.drop()
  const subscribed = () => Promise.all(servers.map(server => server.call('subscribers')))
  await until('the socket.io instances see every client leave', async () => (await subscribed()).every(n => n === 0))
  const sessions = async () => (await redis.admin.keys('sio:session:*')).length
  await until('a session in Redis for every socket.io client', async () => await sessions() === clients.length)
  const length = await redis.admin.xlen(CHANNEL)
  await servers[0].call('publish', { from: sent, count: messages, interval: 1 })
  await until('the missed messages in the stream', async () => await redis.admin.xlen(CHANNEL) >= length + messages)
  return storm(servers, redis, () => {
    const start = process.hrtime.bigint()
    const caughtUp = everyoneCaughtUp(clients, messages, start)
    for (const c of clients) c.reconnect()
    return { clients, start, caughtUp }
  })
}

// ---------------------------------------------------------------------------------------------
// One measurement

/** CPU around `begin()` (which starts the storm) until everyone has caught up, then a check for extras. */
async function storm (servers, redis, begin) {
  const cpu = () => Promise.all(servers.map(server => server.call('cpu')))
  const serverCpu = await cpu()
  const redisCpu = redis.cpu()
  const clientCpu = process.cpuUsage()
  const { clients, caughtUp } = await begin()
  const { last, each } = await caughtUp
  const { user, system } = process.cpuUsage(clientCpu)
  const serverMs = (await cpu()).reduce((sum, us, i) => sum + us - serverCpu[i], 0) / 1000
  const redisMs = redis.cpu() - redisCpu
  await sleep(200) // a message delivered twice would show now
  const off = clients.filter(c => c.count !== c.target)
  if (off.length > 0) throw new Error(`${off.length} clients got another count than ${clients[0].target}, e.g. ${off[0].count}`)
  return { last, p50: percentile(each, 50), serverMs, redisMs, clientMs: (user + system) / 1000 }
}

async function measure (competitor, { redis, perInstance, messages, inproc }) {
  await redis.admin.flushall()
  const servers = []
  const clients = []
  try {
    for (let i = 0; i < INSTANCES; i++) {
      servers.push(await startServer({
        module: 'redis-servers.js', competitor, scenario: 'resume-storm', params: { redis: redis.path, channel: CHANNEL, history: messages, recovery: true }
      }, { inproc }))
    }
    const shape = { servers, perInstance, messages, redis, clients } // clients: closed here whatever happens
    return competitor === SOCKET_IO ? await measureSocketIo(competitor, shape) : await measureComet(competitor, shape)
  } finally {
    for (const c of clients) c.close()
    await Promise.all(servers.map(server => server.close()))
  }
}

async function run ({ quick, inproc, rounds: roundsOpt }) {
  const binary = findRedisServer()
  if (binary === undefined) {
    log(`  resume-storm skipped: ${INSTALL_HINT}`)
    return `### Resume storm: skipped, ${INSTALL_HINT}`
  }
  const { perInstance, messages } = settings(quick)
  const clients = INSTANCES * perInstance
  const rounds = roundsOpt ?? (quick ? 1 : 3)
  if (fdLimit() < clients + 200) throw new Error(`resume-storm needs ${clients + 200} open files, ulimit -n is ${fdLimit()}: raise it`)
  const redis = await startRedis(binary)
  const results = Object.fromEntries(COMPETITORS.map(c => [c, []]))
  try {
    for (let round = 0; round < rounds; round++) {
      for (const competitor of orderFor(COMPETITORS, round)) {
        const r = await measure(competitor, { redis, perInstance, messages, inproc })
        results[competitor].push(r)
        log(`  resume-storm round ${round + 1}/${rounds} ${competitor}: every client caught up in ${fmt(r.last, 0)} ms ` +
          `(median client ${fmt(r.p50, 0)} ms), servers ${fmt(r.serverMs, 0)} ms CPU, redis-server ${fmt(r.redisMs, 0)} ms`)
      }
    }
  } finally {
    await redis.stop()
  }
  const of = (c, key) => median(results[c].map(r => r[key]))
  const deliveries = clients * messages
  const rows = COMPETITORS.map(c => [
    c,
    fmtInt(of(c, 'last')),
    `${fmtInt(Math.min(...results[c].map(r => r.last)))} – ${fmtInt(Math.max(...results[c].map(r => r.last)))}`,
    `${fmt(of(SOCKET_IO, 'last') / of(c, 'last'))}x`,
    fmtInt(of(c, 'p50')),
    fmtInt(deliveries / (of(c, 'last') / 1000)),
    fmtInt((of(c, 'serverMs') * 1e6) / deliveries),
    fmt(of(c, 'redisMs'), 0),
    fmtInt((of(c, 'clientMs') * 1e6) / deliveries)
  ])
  return [
    `### Resume storm: ${fmtInt(clients)} clients (${INSTANCES} x ${fmtInt(perInstance)}) reconnect at once, each missed the same ${fmtInt(messages)} messages, ` +
      `median of ${rounds} round(s)` + (inproc ? ' (servers in-process)' : ' (each instance in its own process)'),
    '',
    table(['competitor', 'every client caught up, ms', 'min – max', `${SOCKET_IO} ÷ this`, 'median client caught up, ms',
      'replayed deliveries/s', 'server CPU ns/delivery', 'redis-server CPU ms', 'client CPU ns/delivery'], rows),
    '',
    `From the reconnects (every one in the same tick) until the last client has all ${fmtInt(messages)} messages it missed, exactly once ` +
      '(checked: none more 200 ms later). The messages were published on instance 1 while the clients were away; each client ' +
      `comes back to the instance it was on. ${COMET}: a channel with \`history: ${fmtInt(messages)}\`, a fresh GET with ` +
      `\`?lastEventId=\` of the message before. ${SOCKET_IO}: \`connectionStateRecovery\`, the clients' WebSockets dropped ` +
      '(the server keeps each session in Redis), then `socket.connect()` with the session; every client checked `recovered`. ' +
      'Server CPU: both instances, per replayed delivery; client CPU: the benchmark process.'
  ].join('\n')
}

module.exports = { name: 'resume-storm', run, settings }
