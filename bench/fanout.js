'use strict'

// 5. Fan-out: one message to many open streams. N clients (raw `net` sockets) subscribe, then
// the server publishes M small messages, BURST of them per turn of its event loop, as fast as the
// broadcaster takes them. Each client counts message terminators; the run ends when the last
// client has the last message. Deliveries/s = N x M / (time from the first publish until then).
// The server records the first publish with process.hrtime.bigint() and the client the last
// arrival, on the same monotonic clock (as in latency.js). Each round: a fresh server process,
// N streams opened, one warm-up publish of M/10 messages, then the measured one.

const { startServer, connect, request, terminatorOf, median, orderFor, table, fmt, fmtInt, buildComparison, fdLimit, log } = require('./common.js')
const { withBaselineBuild } = require('./servers.js')

const COMPETITORS = withBaselineBuild(['node:http loop', 'fastify-comet', 'fastify-comet (helmet: false)', '@fastify/sse'])
const BASELINE = 'node:http loop'
// the baseline is the per-message server's fan-out mode (servers.js fanoutHandler)
const SERVER_OF = { 'node:http loop': 'per-message' }
const COMETS = withBaselineBuild(['fastify-comet', 'fastify-comet (helmet: false)'])
// Messages published per turn of the server's event loop: a busy feed (a broker delivering
// several messages per read, a game tick) rather than one message per tick, which would favour
// whoever writes each message at once.
// FANOUT_BURST=1 node bench/run.js fanout tries another burst size.
const BURST = Number(process.env.FANOUT_BURST || 10)
const CONCURRENCY = 200 // streams opened at a time
const TIMEOUT = 120000

const HEADERS_END = Buffer.from('\r\n\r\n')

/**
 * One subscribed client: counts terminators on its socket. `initial` is how many the server sends
 * when the stream opens (@fastify/sse: one event to commit its headers; the others none).
 * Heartbeats cannot be miscounted: comet's is a script without a message, @fastify/sse's (`: heartbeat\n\n`)
 * comes after 30 s, longer than a server lives here.
 */
class Subscriber {
  constructor (socket, terminator, initial) {
    this.socket = socket
    this.term = Buffer.from(terminator)
    this.initial = initial
    this.count = 0
    this.head = Buffer.alloc(0) // bytes until the end of the response headers
    this.headerSeen = false
    this.body = 0
    this.carry = Buffer.alloc(0) // last term.length - 1 bytes: a terminator may straddle chunks
    this.target = Infinity
    this.doneAt = 0n
    this.onReady = undefined
    this.onTarget = undefined
    this.onFail = undefined
    this.error = undefined // the socket failed or closed: set once, reported to whoever waits
    this.closing = false // we are closing it ourselves
    socket.on('data', chunk => this.data(chunk))
    socket.on('error', err => this.fail(err))
    socket.on('close', () => this.fail(new Error(`socket closed after ${this.count} messages (${this.target - this.initial} expected)`)))
  }

  data (chunk) {
    if (!this.headerSeen) {
      const buf = Buffer.concat([this.head, chunk])
      const end = buf.indexOf(HEADERS_END)
      if (end === -1) { this.head = buf; return }
      if (buf.toString('latin1', 0, 12) !== 'HTTP/1.1 200') return this.fail(new Error(`unexpected response: ${buf.toString('latin1', 0, 200)}`))
      this.headerSeen = true
      this.head = undefined
      chunk = buf.subarray(end + HEADERS_END.length)
    }
    this.body += chunk.length
    this.count += this.countIn(chunk)
    if (this.onReady !== undefined && this.body > 0 && this.count >= this.initial) {
      const ready = this.onReady
      this.onReady = undefined
      ready()
    }
    if (this.count >= this.target && this.doneAt === 0n) {
      this.doneAt = process.hrtime.bigint()
      this.onTarget()
    }
  }

  // Terminators in `chunk`, including one that started in the previous chunk. `carry` holds the
  // last term.length - 1 bytes after the last terminator found, so it never holds a whole one;
  // only the few bytes around the seam are copied, not the chunk.
  countIn (chunk) {
    const term = this.term
    const keep = term.length - 1
    const carry = this.carry
    if (chunk.length < keep) { // a tiny chunk: search carry + chunk as one
      const buf = Buffer.concat([carry, chunk])
      const { n, after } = find(buf, term, 0)
      this.carry = buf.subarray(Math.max(after, buf.length - keep))
      return n
    }
    let n = 0
    let from = 0
    if (carry.length > 0) {
      // at most one terminator can start in carry and end in this chunk
      const at = Buffer.concat([carry, chunk.subarray(0, keep)]).indexOf(term)
      if (at !== -1 && at < carry.length) {
        n++
        from = at + term.length - carry.length
      }
    }
    const found = find(chunk, term, from)
    this.carry = chunk.subarray(Math.max(found.after, chunk.length - keep))
    return n + found.n
  }

  fail (err) {
    if (this.error !== undefined || this.closing) return
    this.error = err
    this.onFail?.(err)
  }
}

/** How many times `term` occurs in `buf` from `from`, and where the last one ends. */
function find (buf, term, from) {
  let n = 0
  let after = from
  for (let at = buf.indexOf(term, from); at !== -1; at = buf.indexOf(term, after)) {
    n++
    after = at + term.length
  }
  return { n, after }
}

/** Opens one stream (a GET of `path`) and resolves with its Subscriber (or `Kind`, a subclass) once it is live. */
async function subscribe (port, terminator, initial, Kind = Subscriber, path = '/') {
  const socket = await connect(port)
  const subscriber = new Kind(socket, terminator, initial)
  await new Promise((resolve, reject) => {
    subscriber.onReady = resolve
    subscriber.onFail = reject
    socket.write(request(path))
  })
  return subscriber
}

/** Resolves with the hrtime at which the last subscriber reached `total` messages. */
function allReach (subscribers, total) {
  return new Promise((resolve, reject) => {
    let waiting = subscribers.length
    let last = 0n
    const timer = setTimeout(() => {
      const behind = subscribers.filter(s => s.count < s.initial + total)
      reject(new Error(`timed out: ${behind.length} clients behind, e.g. ${behind[0]?.count} of ${total} messages`))
    }, TIMEOUT)
    const reached = (s) => {
      if (s.doneAt > last) last = s.doneAt
      if (--waiting === 0) { clearTimeout(timer); resolve(last) }
    }
    for (const s of subscribers) {
      if (s.error !== undefined) { clearTimeout(timer); return reject(s.error) }
      s.onFail = (err) => { clearTimeout(timer); reject(err) }
      s.doneAt = 0n
      s.onTarget = () => reached(s)
      s.target = s.initial + total
      if (s.count >= s.target) { s.doneAt = process.hrtime.bigint(); reached(s) }
    }
  })
}

/**
 * One server, `clients` subscribers, a warm-up publish, then `repeat` measured publishes of
 * `messages` each. Returns per measured publish { ms, cpu (server ns per delivery), publishMs }.
 * With `profile` (a file name), the server writes a CPU profile of the measured publishes there.
 * Each client asks for `path` (the competitor's stream at `/` by default).
 */
async function measure (competitor, { clients, messages, burst = BURST, repeat = 1, inproc, execArgv = [], profile, path = '/' }) {
  const server = await startServer(
    { competitor: SERVER_OF[competitor] ?? competitor, scenario: 'fanout', params: {} },
    { inproc, execArgv }
  )
  const terminator = terminatorOf(competitor)
  const initial = competitor.includes('sse') ? 1 : 0
  const subscribers = []
  try {
    for (let i = 0; i < clients; i += CONCURRENCY) {
      const batch = []
      for (let j = i; j < Math.min(clients, i + CONCURRENCY); j++) batch.push(subscribe(server.port, terminator, initial, Subscriber, path))
      subscribers.push(...await Promise.all(batch))
    }
    const open = await server.call('subscribers')
    if (open !== clients) throw new Error(`${competitor}: ${open} of ${clients} streams subscribed on the server`)
    let sent = 0
    const publish = async (count) => {
      const arrived = allReach(subscribers, sent + count)
      const published = await server.call('publish', { from: sent, count, burst })
      sent += count
      return { start: BigInt(published.start), end: BigInt(published.end), last: await arrived }
    }
    await publish(Math.max(1, Math.round(messages / 10))) // warm-up
    if (profile !== undefined) await server.call('profile-start')
    const results = []
    for (let r = 0; r < repeat; r++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      const cpuBefore = await server.call('cpu')
      const { start, end, last } = await publish(messages)
      const cpuAfter = await server.call('cpu')
      results.push({
        ms: Number(last - start) / 1e6,
        publishMs: Number(end - start) / 1e6,
        cpu: ((cpuAfter - cpuBefore) * 1000) / (clients * messages)
      })
    }
    if (profile !== undefined) await server.call('profile-stop', { file: profile })
    const still = await server.call('subscribers')
    if (still !== clients) throw new Error(`${competitor}: ${still} of ${clients} streams still subscribed after publishing`)
    return results
  } finally {
    for (const s of subscribers) {
      s.closing = true
      s.socket.destroy()
    }
    await server.close()
  }
}

async function run ({ quick, inproc, rounds: roundsOpt, execArgv = [] }) {
  const clients = quick ? 200 : 2000
  const messages = quick ? 100 : 1000
  const rounds = roundsOpt ?? (quick ? 2 : 5)
  const limit = fdLimit()
  if (limit < clients + 200) {
    throw new Error(`fanout needs ${clients + 200} open files in this process, ulimit -n is ${limit}: raise it (ulimit -n ${clients + 1000})`)
  }
  const deliveries = clients * messages
  const ms = Object.fromEntries(COMPETITORS.map(c => [c, []]))
  const cpu = Object.fromEntries(COMPETITORS.map(c => [c, []]))
  const publishMs = Object.fromEntries(COMPETITORS.map(c => [c, []]))
  for (let round = 0; round < rounds; round++) {
    for (const competitor of orderFor(COMPETITORS, round)) {
      const [r] = await measure(competitor, { clients, messages, inproc, execArgv })
      ms[competitor].push(r.ms)
      cpu[competitor].push(r.cpu)
      publishMs[competitor].push(r.publishMs)
      log(`  fanout round ${round + 1}/${rounds} ${competitor}: ${fmt(r.ms, 1)} ms, ${fmtInt(deliveries / (r.ms / 1000))} deliveries/s, ` +
        `${fmtInt(r.cpu)} ns CPU/delivery, publishing took ${fmt(r.publishMs, 1)} ms`)
    }
  }
  const rate = (c) => deliveries / (median(ms[c]) / 1000)
  const rates = (c) => ms[c].map(t => deliveries / (t / 1000))
  // The machine's speed drifts between rounds; within a round the competitors run back to back,
  // so the median of per-round ratios is the steadier comparison.
  const roundRatio = (c) => median(ms[c].map((t, round) => ms[BASELINE][round] / t))
  const rows = COMPETITORS.map(c => [
    c,
    fmtInt(rate(c)),
    `${fmtInt(Math.min(...rates(c)))} – ${fmtInt(Math.max(...rates(c)))}`,
    `${fmt(rate(c) / rate(BASELINE))}x`,
    `${fmt(roundRatio(c))}x`,
    fmt(median(ms[c]), 1),
    fmt(median(publishMs[c]), 1),
    fmtInt(median(cpu[c])),
    `${fmt(median(cpu[BASELINE]) / median(cpu[c]))}x`
  ])
  const lines = [
    `### Fan-out: ${fmtInt(clients)} clients x ${fmtInt(messages)} messages (${BURST} published per event-loop turn), ` +
      `median of ${rounds} rounds` + (inproc ? ' (servers in-process)' : ' (servers in a child process)'),
    '',
    table(['competitor', 'deliveries/s (median)', 'min – max', `vs ${BASELINE}`, `vs ${BASELINE}, median of per-round ratios`, 'first publish -> last client has last message, ms',
      'publishing took, ms', 'server CPU ns/delivery', `CPU: ${BASELINE} ÷ this`], rows),
    '',
    `deliveries/s = ${fmtInt(clients)} x ${fmtInt(messages)} / (first publish until the last client saw the last message). ` +
      'Server CPU is user+system time of the server process over the same span, per delivery; above 1 in the last column means cheaper.'
  ]
  const sse = COMPETITORS.filter(c => c.includes('sse'))
  for (const c of COMETS) {
    const vsBase = rate(c) / rate(BASELINE)
    const vsRound = roundRatio(c)
    lines.push('', `Targets for ${c}: >= 0.8x ${BASELINE}: ${fmt(vsBase)}x ${vsBase >= 0.8 ? 'MET' : 'MISSED'} ` +
      `(per-round: ${fmt(vsRound)}x ${vsRound >= 0.8 ? 'MET' : 'MISSED'}) | ` +
      `ahead of ${sse.join(' and ')}: ${sse.every(s => rate(c) > rate(s)) ? 'MET' : 'MISSED'}`)
  }
  const comparison = [
    ...buildComparison(COMPETITORS, c => rate(c) / rate(BASELINE), `deliveries/s vs ${BASELINE}`),
    ...buildComparison(COMPETITORS, roundRatio, `vs ${BASELINE}, median of per-round ratios`),
    ...buildComparison(COMPETITORS, c => median(cpu[BASELINE]) / median(cpu[c]), `CPU: ${BASELINE} ÷ this`)
  ]
  if (comparison.length > 0) lines.push('', 'Against the baseline build (COMET_DIST_BASELINE), same run:', '', ...comparison)
  return lines.join('\n')
}

module.exports = { name: 'fanout', run, measure, COMPETITORS, SERVER_OF, BURST, Subscriber, subscribe, allReach }
