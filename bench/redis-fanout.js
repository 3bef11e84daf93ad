'use strict'

// Fan-out across instances through Redis (issue 11). INSTANCES server instances (child processes)
// share one redis-server that this benchmark starts for itself (unix socket, no persistence,
// killed at the end); 500 clients subscribe to each (settings()), and one instance publishes
// at a light rate (latency alone), then 1,000 messages one every INTERVAL ms, then 1,000 as fast as
// acknowledgements allow (WINDOW in flight: the capacity, which one a millisecond does not reach
// for most competitors: they finish in the second the publishing takes). Every message carries the
// process.hrtime (µs) of its publish; clients read their own clock (the same monotonic clock) when
// it arrives: publish-to-delivery latency. Deliveries/s = clients x messages / (first publish until
// the last client has the last message). Competitors (bench/redis-servers.js):
//   fastify-comet (in process)          one instance holding every client, no Redis: the reference
//   fastify-comet + Redis               the broker (fastify-comet/redis), publish through instance 1
//   node:http + ioredis                 the hand-written practical limit (baseline of the ratios)
//   socket.io + redis-streams-adapter   socket.io-client over WebSocket, io.emit on instance 1
// Skipped, with one line, when redis-server is not installed.

const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawn, execFileSync } = require('node:child_process')
const { setTimeout: sleep } = require('node:timers/promises')
const { startServer, median, orderFor, table, fmt, fmtInt, fdLimit, log } = require('./common.js')
const { Subscriber, subscribe, allReach } = require('./fanout.js')
const { COMET_DIST_BASELINE, BASELINE_BUILD } = require('./servers.js')

const COMET = 'fastify-comet + Redis'
// COMET_DIST_BASELINE adds a twin of the broker competitor alone, built from there (the in-process
// reference stays this build's: the twin's added latency is over the same reference).
const TWIN = COMET_DIST_BASELINE === undefined ? undefined : COMET + BASELINE_BUILD
const COMPETITORS = ['fastify-comet (in process)', COMET, ...(TWIN === undefined ? [] : [TWIN]), 'node:http + ioredis', 'socket.io + redis-streams-adapter']
const BASELINE = 'node:http + ioredis'
const IN_PROCESS = 'fastify-comet (in process)'
const SOCKET_IO = 'socket.io + redis-streams-adapter'
const CHANNEL = 'bench'
const INSTANCES = 2
// Milliseconds between two publishes. REDIS_FANOUT_INTERVAL=2 node bench/run.js redis-fanout tries another rate.
const INTERVAL = Number(process.env.REDIS_FANOUT_INTERVAL || 1)
// Publishes in flight in the saturated phase, each acknowledged one making room for the next (socket.io,
// which acknowledges nothing: as many per event-loop turn). The publishing instance serves clients
// too, so an acknowledgement waits for its event loop: with 16 in flight that loop set every
// competitor's pace alike (1,000 clients: about 300 publishes/s each, on a busy machine); with 128
// the servers' capacity does. REDIS_FANOUT_WINDOW=16 node bench/run.js redis-fanout tries another.
const WINDOW = Number(process.env.REDIS_FANOUT_WINDOW || 128)
// The light phase: a rate every competitor keeps up with, for latency alone. One message to 1,000
// loopback sockets costs the servers and the clients some 20-30 ms of CPU here (a writev of about
// 10-15 µs per socket, profiled), so 20 ms was not light on 2 CPUs; 100 ms is.
const LIGHT_INTERVAL = 100
const LIGHT_MESSAGES = 50
const CONCURRENCY = 100 // clients connecting at a time
const INSTALL_HINT = 'redis-server not found: install it with `apt-get install redis-server` (or set REDIS_SERVER=/path/to/redis-server)'

const nowMicros = () => Number(process.hrtime.bigint() / 1000n)

/** Latencies (µs) of one measured publish, from every client, in one preallocated array. */
class Samples {
  constructor (capacity) {
    this.values = new Float64Array(capacity)
    this.length = 0
  }

  add (micros) {
    if (this.length < this.values.length) this.values[this.length++] = micros
  }

  /** Nearest-rank percentiles, in ms. */
  percentiles (...ps) {
    const sorted = this.values.subarray(0, this.length).sort()
    return ps.map(p => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] / 1000)
  }
}

// ---------------------------------------------------------------------------------------------
// Clients

// Every message holds its publish time as `"t":MICROS` exactly once: the marker counts messages in
// comet's batch format (many per script element) and in the baseline's, which is the same format.
const STAMP = Buffer.from('"t":')
const EMPTY = Buffer.alloc(0)

/** A raw-socket comet client (fanout.js's Subscriber) that also reads each message's publish time. */
class StampedSubscriber extends Subscriber {
  constructor (socket, terminator, initial) {
    super(socket, terminator, initial)
    this.samples = undefined
  }

  countIn (chunk) {
    const now = this.samples === undefined ? 0 : nowMicros()
    const buf = this.carry.length === 0 ? chunk : Buffer.concat([this.carry, chunk])
    this.carry = EMPTY
    let n = 0
    for (let at = buf.indexOf(STAMP); at !== -1;) {
      let i = at + STAMP.length
      let t = 0
      for (let c = buf[i]; c >= 48 && c <= 57; c = buf[++i]) t = t * 10 + c - 48
      if (i >= buf.length) { // the number may go on in the next chunk
        this.carry = buf.subarray(at)
        return n
      }
      n++
      this.samples?.add(now - t)
      at = buf.indexOf(STAMP, i)
    }
    // a marker may begin in the last bytes
    for (let k = Math.min(STAMP.length - 1, buf.length); k > 0; k--) {
      if (buf.compare(STAMP, 0, k, buf.length - k) === 0) {
        this.carry = buf.subarray(buf.length - k)
        break
      }
    }
    return n
  }

  close () {
    this.closing = true
    this.socket.destroy()
  }
}

/** A socket.io-client over WebSocket, with the fields fanout.js's allReach() reads. */
class SocketIoSubscriber {
  constructor (socket) {
    this.socket = socket
    this.count = 0
    this.initial = 0
    this.target = Infinity
    this.doneAt = 0n
    this.onTarget = undefined
    this.onFail = undefined
    this.error = undefined
    this.closing = false
    this.samples = undefined
    socket.on('m', message => this.message(message))
    socket.on('disconnect', reason => this.fail(new Error(`socket.io client disconnected (${reason}) after ${this.count} messages`)))
  }

  message (message) {
    this.count++
    this.samples?.add(nowMicros() - message.t)
    if (this.count >= this.target && this.doneAt === 0n) {
      this.doneAt = process.hrtime.bigint()
      this.onTarget()
    }
  }

  fail (err) {
    if (this.error !== undefined || this.closing) return
    this.error = err
    this.onFail?.(err)
  }

  close () {
    this.closing = true
    this.socket.disconnect()
  }
}

function connectSocketIo (port) {
  const { io } = require('socket.io-client')
  const socket = io(`http://127.0.0.1:${port}`, { transports: ['websocket'], forceNew: true, reconnection: false, timeout: 30000 })
  const subscriber = new SocketIoSubscriber(socket)
  return new Promise((resolve, reject) => {
    socket.once('connect', () => { socket.off('connect_error', reject); resolve(subscriber) })
    socket.once('connect_error', err => { socket.disconnect(); reject(err) })
  })
}

async function openClients (competitor, port, count) {
  const open = competitor === SOCKET_IO ? () => connectSocketIo(port) : () => subscribe(port, STAMP, 0, StampedSubscriber)
  const clients = []
  for (let i = 0; i < count; i += CONCURRENCY) {
    const batch = []
    for (let j = i; j < Math.min(count, i + CONCURRENCY); j++) batch.push(open())
    clients.push(...await Promise.all(batch))
  }
  return clients
}

function failed (clients) {
  return clients.find(c => c.error !== undefined)?.error
}

/**
 * Publishes one message at a time until every client has one: a socket.io instance reads its
 * stream from `$` only once its polling has started, and a comet instance delivers once it has
 * read where the channel stands. Then waits until nothing more arrives, and zeroes the counts.
 */
async function untilEveryoneHears (clients, publishOne) {
  const deadline = Date.now() + 10000
  while (clients.some(c => c.count === 0)) {
    const err = failed(clients)
    if (err !== undefined) throw err
    if (Date.now() > deadline) throw new Error(`${clients.filter(c => c.count === 0).length} clients heard nothing in 10 s`)
    await publishOne()
    await sleep(50)
  }
  for (let total = -1; ;) {
    const now = clients.reduce((sum, c) => sum + c.count, 0)
    if (now === total) break
    total = now
    await sleep(200)
  }
  reset(clients)
}

function reset (clients) {
  for (const c of clients) c.count = 0
}

// ---------------------------------------------------------------------------------------------
// redis-server, our own

function findRedisServer () {
  if (process.env.REDIS_SERVER) return fs.existsSync(process.env.REDIS_SERVER) ? process.env.REDIS_SERVER : undefined
  const dirs = (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/bin', '/usr/sbin', '/usr/local/bin'])
  return dirs.map(dir => path.join(dir, 'redis-server')).find(file => fs.existsSync(file))
}

function clockTicks () {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
}

/** Starts redis-server on a unix socket in a temporary folder, persistence off. */
async function startRedis (binary) {
  const { Redis } = require('ioredis')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'comet-bench-redis-'))
  const socketPath = path.join(dir, 'redis.sock')
  const child = spawn(binary, ['--port', '0', '--unixsocket', socketPath, '--save', '', '--appendonly', 'no', '--dir', dir], {
    stdio: ['ignore', 'ignore', 'inherit']
  })
  const killOnExit = () => child.kill('SIGKILL') // should this process die first
  process.on('exit', killOnExit)
  const exited = new Promise(resolve => child.once('exit', resolve))
  const stop = async () => {
    process.off('exit', killOnExit)
    child.kill('SIGKILL')
    await exited
    fs.rmSync(dir, { recursive: true, force: true })
  }
  let admin
  try {
    const deadline = Date.now() + 10000
    while (!fs.existsSync(socketPath)) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}) before it listened`)
      if (Date.now() > deadline) throw new Error('redis-server did not listen within 10 s')
      await sleep(20)
    }
    admin = new Redis(socketPath)
    await admin.ping()
  } catch (err) {
    admin?.disconnect()
    await stop()
    throw err
  }
  const ticks = clockTicks()
  return {
    path: socketPath,
    pid: child.pid,
    admin,
    /** redis-server's user + system CPU time so far, ms (from /proc, in clock ticks). */
    cpu () {
      const stat = fs.readFileSync(`/proc/${child.pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticks
    },
    async stop () {
      admin.disconnect()
      await stop()
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One measurement

/**
 * Fresh server instances (Redis emptied), clients subscribed, a probe until every client hears, a
 * warm-up publish, then one measured publish per phase ({ messages, interval }), in order. With
 * `profile` (a folder), every instance writes a CPU profile of the last phase there.
 */
async function measure (competitor, { redis, instances, perInstance, warmup, phases, inproc, profile }) {
  await redis.admin.flushall()
  const servers = []
  const clients = []
  try {
    for (let i = 0; i < instances; i++) {
      servers.push(await startServer({
        module: 'redis-servers.js', competitor, scenario: 'redis-fanout', params: { redis: redis.path, channel: CHANNEL }
      }, { inproc }))
    }
    for (const server of servers) clients.push(...await openClients(competitor, server.port, perInstance))
    const subscribed = async (when) => {
      const counts = await Promise.all(servers.map(server => server.call('subscribers')))
      if (counts.some(n => n !== perInstance)) throw new Error(`${competitor}: ${counts.join(' + ')} clients subscribed ${when}, ${perInstance} per instance expected`)
    }
    await subscribed('before publishing')
    let sent = 0
    // pace: { interval } (one every so many ms) or { window } (as fast as acknowledgements allow)
    const publish = async (count, pace) => {
      const result = await servers[0].call('publish', { from: sent, count, ...pace })
      sent += count
      return { ...result, start: BigInt(result.start), end: BigInt(result.end) }
    }
    await untilEveryoneHears(clients, () => publish(1, { interval: 1 }))
    const arrived = allReach(clients, warmup)
    await publish(warmup, { interval: INTERVAL }) // the steady rate: every path gets hot
    await arrived
    reset(clients)
    const results = []
    for (const [i, phase] of phases.entries()) {
      const last = i === phases.length - 1
      results.push(await measurePhase(competitor, { servers, clients, redis, phase, publish, profile: last ? profile : undefined }))
      await subscribed('after publishing')
    }
    return results
  } finally {
    for (const c of clients) c.close()
    await Promise.all(servers.map(server => server.close()))
  }
}

async function measurePhase (competitor, { servers, clients, redis, phase, publish, profile }) {
  const { messages, interval, window } = phase
  const samples = new Samples(clients.length * messages)
  for (const c of clients) c.samples = samples
  if (profile !== undefined) await Promise.all(servers.map(server => server.call('profile-start')))
  await Promise.all(servers.map(server => server.call('loop-delay', { reset: true })))
  const serverCpu = await Promise.all(servers.map(server => server.call('cpu')))
  const clientCpu = process.cpuUsage()
  const redisCpu = redis.cpu()
  const arrived = allReach(clients, messages)
  const { start, end, failed, error, slowestAck } = await publish(messages, window === undefined ? { interval } : { window })
  const last = await arrived
  const serverCpuAfter = await Promise.all(servers.map(server => server.call('cpu')))
  const loopDelay = Math.max(...(await Promise.all(servers.map(server => server.call('loop-delay')))).map(d => d.max))
  const { user, system } = process.cpuUsage(clientCpu)
  const redisMs = redis.cpu() - redisCpu
  if (profile !== undefined) {
    const name = competitor.replace(/\W+/g, '-')
    await Promise.all(servers.map((server, i) => server.call('profile-stop', { file: path.join(profile, `redis-fanout-${name}-${i + 1}-${Date.now()}.cpuprofile`) })))
  }
  for (const c of clients) c.samples = undefined
  await sleep(200) // a message delivered twice would show now
  const off = clients.filter(c => c.count !== messages)
  if (off.length > 0) throw new Error(`${competitor}: ${off.length} clients got another count than ${messages}, e.g. ${off[0].count}`)
  // A publish that timed out may still have been delivered (every client has every message): counted, not fatal.
  if (failed > 0) log(`  ${competitor}: ${failed} of ${messages} publishes rejected (${error}), yet every client got every message`)
  reset(clients)
  const deliveries = clients.length * messages
  const [p50, p99] = samples.percentiles(50, 99)
  return {
    ms: Number(last - start) / 1e6,
    publishMs: Number(end - start) / 1e6,
    drainMs: Number(last - end) / 1e6,
    failed,
    slowestAck,
    loopDelay,
    p50,
    p99,
    serverCpu: (serverCpuAfter.reduce((sum, us, i) => sum + us - serverCpu[i], 0) * 1000) / deliveries, // ns
    clientCpu: ((user + system) * 1000) / deliveries,
    redisMs
  }
}

// ---------------------------------------------------------------------------------------------
// The benchmark

/**
 * Sizes and phases: first a light rate, far below what any competitor can deliver, where latency is
 * the path itself (the added-latency target); then the steady rate of issue 11, a busy feed that
 * only the slowest competitor falls behind (the others finish in the time the publishing takes);
 * then saturated, publishing as fast as acknowledgements allow: deliveries/s is the capacity, and
 * latency includes the queues.
 */
function settings (quick) {
  const perInstance = quick ? 25 : 500
  return {
    perInstance,
    clients: INSTANCES * perInstance,
    warmup: quick ? 10 : 100,
    phases: [
      { name: 'light', messages: quick ? 10 : LIGHT_MESSAGES, interval: LIGHT_INTERVAL },
      { name: 'steady', messages: quick ? 50 : 1000, interval: INTERVAL },
      { name: 'saturated', messages: quick ? 50 : 1000, window: WINDOW }
    ]
  }
}

async function run ({ quick, inproc, rounds: roundsOpt }) {
  const binary = findRedisServer()
  if (binary === undefined) {
    log(`  redis-fanout skipped: ${INSTALL_HINT}`)
    return `### Redis fan-out: skipped, ${INSTALL_HINT}`
  }
  const { perInstance, clients, warmup, phases } = settings(quick)
  const rounds = roundsOpt ?? (quick ? 1 : 3)
  const limit = fdLimit()
  // the clients here, and as many sockets in the one server process of the in-process competitor
  if (limit < 2 * clients + 200) {
    throw new Error(`redis-fanout needs ${2 * clients + 200} open files per process, ulimit -n is ${limit}: raise it (ulimit -n ${2 * clients + 1000})`)
  }
  const redis = await startRedis(binary)
  const results = phases.map(() => Object.fromEntries(COMPETITORS.map(c => [c, []])))
  try {
    for (let round = 0; round < rounds; round++) {
      for (const competitor of orderFor(COMPETITORS, round)) {
        const inProcess = competitor === IN_PROCESS
        const measured = await measure(competitor, {
          redis,
          instances: inProcess ? 1 : INSTANCES,
          perInstance: inProcess ? clients : perInstance,
          warmup,
          phases,
          inproc
        })
        measured.forEach((r, i) => {
          results[i][competitor].push(r)
          log(`  redis-fanout round ${round + 1}/${rounds} ${competitor}, ${phases[i].name}: ` +
            `${fmtInt((clients * phases[i].messages) / (r.ms / 1000))} deliveries/s, p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, ` +
            `publishing ${fmt(r.publishMs, 0)} ms, drain ${fmt(r.drainMs, 0)} ms, server CPU ${fmtInt(r.serverCpu)} ns/delivery`)
        })
      }
    }
  } finally {
    await redis.stop()
  }
  const shape = { clients, perInstance, rounds, inproc }
  const [light, steady, saturated] = phases.map((phase, i) => ({ ...phase, ...summarise(results[i], { ...shape, messages: phase.messages }) }))
  return [
    rateReport(saturated, shape),
    '',
    rateReport(steady, shape),
    '',
    lightReport(light, shape),
    '',
    `Saturated, ${COMET}: ${fmt(saturated.vsBase)}x ${BASELINE} (per-round: ${fmt(saturated.vsRound)}x), ` +
      `${fmt(saturated.rate(COMET) / saturated.rate(SOCKET_IO))}x ${SOCKET_IO}; ` +
      `server CPU per delivery, ${BASELINE} ÷ ${COMET}: ${fmt(median(saturated.of(BASELINE, 'serverCpu')) / median(saturated.of(COMET, 'serverCpu')))}`,
    '',
    `Targets for ${COMET}: >= 0.8x ${BASELINE} (steady): ${fmt(steady.vsBase)}x ${verdict(steady.vsBase >= 0.8)} ` +
      `(per-round: ${fmt(steady.vsRound)}x ${verdict(steady.vsRound >= 0.8)}) | ` +
      `ahead of ${SOCKET_IO} (steady): ${verdict(steady.rate(COMET) > steady.rate(SOCKET_IO))} | ` +
      `added latency over ${IN_PROCESS}, p50 < 2 ms (light): ${fmt(light.added, 2)} ms ${verdict(light.added < 2)} ` +
      `(per-round: ${fmt(light.addedPerRound, 2)} ms ${verdict(light.addedPerRound < 2)}; ` +
      `at the steady rate: ${fmt(steady.added, 2)} ms ${verdict(steady.added < 2)})`,
    ...twinReport(steady, light, saturated)
  ].join('\n')
}

/** This build's broker against its baseline-build twin, same run: more than 5 % worse is a regression. */
function twinReport (steady, light, saturated) {
  if (TWIN === undefined) return []
  const within = (change, worse) => change >= 0.95 ? 'no regression (within 5%)' : `REGRESSION (more than 5% ${worse})`
  const cpu = (c, phase = steady) => median(phase.of(c, 'serverCpu'))
  const p50 = (phase, c) => median(phase.of(c, 'p50')) - median(phase.of(IN_PROCESS, 'p50'))
  return [
    '',
    `${COMET} against its baseline build (COMET_DIST_BASELINE), same run:`,
    '',
    `- steady deliveries/s: this build ${fmtInt(steady.rate(COMET))} (${fmt(steady.vsBase)}x ${BASELINE}), ` +
      `baseline build ${fmtInt(steady.rate(TWIN))} (${fmt(steady.rate(TWIN) / steady.rate(BASELINE))}x); ` +
      `this ÷ baseline ${fmt(steady.rate(COMET) / steady.rate(TWIN))}: ${within(steady.rate(COMET) / steady.rate(TWIN), 'fewer')}`,
    `- steady deliveries/s, median of per-round ratios vs ${BASELINE}: this build ${fmt(steady.roundRatio(COMET))}x, baseline build ${fmt(steady.roundRatio(TWIN))}x`,
    `- steady server CPU per delivery: this build ${fmtInt(cpu(COMET))} ns, baseline build ${fmtInt(cpu(TWIN))} ns; baseline ÷ this ${fmt(cpu(TWIN) / cpu(COMET))}: ` +
      within(cpu(TWIN) / cpu(COMET), 'more CPU'),
    `- saturated deliveries/s: this build ${fmtInt(saturated.rate(COMET))} (per-round ${fmt(saturated.roundRatio(COMET))}x ${BASELINE}), ` +
      `baseline build ${fmtInt(saturated.rate(TWIN))} (per-round ${fmt(saturated.roundRatio(TWIN))}x); ` +
      `this ÷ baseline ${fmt(saturated.rate(COMET) / saturated.rate(TWIN))}: ${within(saturated.rate(COMET) / saturated.rate(TWIN), 'fewer')}`,
    `- saturated server CPU per delivery: this build ${fmtInt(cpu(COMET, saturated))} ns, baseline build ${fmtInt(cpu(TWIN, saturated))} ns; ` +
      `baseline ÷ this ${fmt(cpu(TWIN, saturated) / cpu(COMET, saturated))}: ${within(cpu(TWIN, saturated) / cpu(COMET, saturated), 'more CPU')}`,
    `- added p50 over ${IN_PROCESS}, light: this build ${fmt(p50(light, COMET), 2)} ms, baseline build ${fmt(p50(light, TWIN), 2)} ms; ` +
      `steady: ${fmt(p50(steady, COMET), 2)} ms, ${fmt(p50(steady, TWIN), 2)} ms`
  ]
}

const verdict = (met) => met ? 'MET' : 'MISSED'

/** Medians over rounds, ratios to the baseline, comet's added latency; and the table rows. */
function summarise (results, { clients, messages }) {
  const deliveries = clients * messages
  const of = (c, key) => results[c].map(r => r[key])
  const rates = (c) => of(c, 'ms').map(ms => deliveries / (ms / 1000))
  const rate = (c) => deliveries / (median(of(c, 'ms')) / 1000)
  // within a round the competitors run back to back: the steadier comparison on a drifting machine
  const roundRatio = (c) => median(of(c, 'ms').map((ms, round) => results[BASELINE][round].ms / ms))
  const p50 = (c) => median(of(c, 'p50'))
  return {
    of,
    rate,
    rates,
    roundRatio,
    vsBase: rate(COMET) / rate(BASELINE),
    vsRound: roundRatio(COMET),
    added: p50(COMET) - p50(IN_PROCESS),
    addedPerRound: median(results[COMET].map((r, round) => r.p50 - results[IN_PROCESS][round].p50))
  }
}

function instancesOf (c, { clients, perInstance }) {
  return c === IN_PROCESS ? `1 x ${fmtInt(clients)}` : `${INSTANCES} x ${fmtInt(perInstance)}`
}

function paceOf (phase) {
  return phase.window === undefined
    ? `one published every ${phase.interval} ms`
    : `published as fast as acknowledgements allow (${phase.window} in flight)`
}

function windowNote ({ window }) {
  if (window === undefined) return ''
  return `Each of ${window} publishers publishes its next message once its last one is acknowledged and the event loop ` +
    `has turned (with the others waiting, as one batch): at most ${window} in flight, and at most ${window} per turn (the in-process channel acknowledges at once; ` +
    'socket.io\'s `io.emit()` returns nothing to wait for). '
}

function rateReport (phase, shape) {
  const { of, rate, rates, roundRatio } = phase
  const rows = COMPETITORS.map(c => [
    c,
    instancesOf(c, shape),
    fmtInt(rate(c)),
    `${fmtInt(Math.min(...rates(c)))} – ${fmtInt(Math.max(...rates(c)))}`,
    `${fmt(rate(c) / rate(BASELINE))}x`,
    `${fmt(roundRatio(c))}x`,
    fmt(median(of(c, 'p50')), 1),
    fmt(median(of(c, 'p99')), 1),
    fmtInt(median(of(c, 'publishMs').map(ms => phase.messages / (ms / 1000)))),
    fmt(median(of(c, 'publishMs')), 0),
    fmt(median(of(c, 'drainMs')), 0),
    fmtInt(median(of(c, 'serverCpu'))),
    fmt(median(of(c, 'redisMs')), 0),
    fmtInt(median(of(c, 'clientCpu'))),
    fmtInt(median(of(c, 'loopDelay'))),
    c === SOCKET_IO ? 'n/a' : fmtInt(Math.max(...of(c, 'slowestAck'))),
    String(Math.max(...of(c, 'failed')))
  ])
  return [
    `### Redis fan-out, ${phase.name}: ${fmtInt(shape.clients)} clients x ${fmtInt(phase.messages)} messages, ${paceOf(phase)}, ` +
      `from one instance, median of ${shape.rounds} round(s)` + (shape.inproc ? ' (servers in-process)' : ' (each instance in its own process)'),
    '',
    table(['competitor', 'instances x clients', 'deliveries/s (median)', 'min – max', `vs ${BASELINE}`, 'median of per-round ratios',
      'latency p50 ms', 'latency p99 ms', 'publishes/s', 'publishing took, ms', 'last publish -> last delivery, ms',
      'server CPU ns/delivery', 'redis-server CPU ms', 'client CPU ns/delivery', 'event-loop delay, max ms', 'slowest acknowledged publish, ms (max)', 'publishes rejected (max)'], rows),
    '',
    `deliveries/s = ${fmtInt(shape.clients)} x ${fmtInt(phase.messages)} / (first publish until the last client has the last message). ` +
      'Publishes/s: messages / publishing took (first publish call to the last). ' +
      windowNote(phase) +
      'Latency: from the publish call (its time is in the message) to the client reading it, every delivery of a round; the median of the rounds\' percentiles. ' +
      'Server CPU: user+system time of every instance over the same span, per delivery; redis-server CPU over the same span; ' +
      'client CPU: the benchmark process (every client), per delivery. Event-loop delay: the most any instance\'s loop ran late ' +
      '(perf_hooks, 10 ms resolution). Publishes rejected: comet\'s `publish()` rejected (timed out after the broker\'s ' +
      '`commandTimeout`, 2 s); slowest acknowledged publish: the longest a publish that resolved ' +
      'waited for Redis\'s answer, as the publishing instance saw it (socket.io\'s `io.emit()` returns nothing to wait for).'
  ].join('\n')
}

function lightReport (phase, shape) {
  const { of } = phase
  const behind = COMPETITORS.filter(c => median(of(c, 'p99')) >= phase.interval)
  const rows = COMPETITORS.map(c => [
    c,
    instancesOf(c, shape),
    fmt(median(of(c, 'p50')), 2),
    fmt(median(of(c, 'p99')), 2),
    `${fmt(Math.min(...of(c, 'p50')), 2)} – ${fmt(Math.max(...of(c, 'p50')), 2)}`,
    fmt(median(of(c, 'p50')) - median(of(IN_PROCESS, 'p50')), 2),
    fmtInt(median(of(c, 'serverCpu'))),
    fmtInt(median(of(c, 'clientCpu'))),
    fmtInt(median(of(c, 'loopDelay')))
  ])
  return [
    `### Redis fan-out latency at a light rate: ${fmtInt(shape.clients)} clients x ${fmtInt(phase.messages)} messages, one every ${phase.interval} ms, ` +
      `median of ${shape.rounds} round(s)`,
    '',
    table(['competitor', 'instances x clients', 'latency p50 ms', 'latency p99 ms', 'p50 min – max', `p50 − ${IN_PROCESS}, ms`,
      'server CPU ns/delivery', 'client CPU ns/delivery', 'event-loop delay, max ms'], rows),
    '',
    'Same servers and clients, measured before the steady rate. At this rate every message should reach every client ' +
      'before the next is published, so that latency is the path itself (for the Redis competitors: a round trip to ' +
      'redis-server, then pub/sub or a stream read). ' +
      (behind.length === 0
        ? `It did here: every p99 is below ${phase.interval} ms.`
        : `It did not here for ${behind.join(', ')} (p99 at or above ${phase.interval} ms): their latency includes queueing, ` +
          'the machine was too busy for this measurement.')
  ].join('\n')
}

module.exports = { name: 'redis-fanout', run, measure, settings, findRedisServer, startRedis, StampedSubscriber, Samples, STAMP, COMPETITORS, INSTANCES, INSTALL_HINT }
