'use strict'

// The harness every benchmark shares: servers in child processes (or in-process), a raw `net`
// client that only counts bytes and message terminators, statistics and markdown tables.

const net = require('node:net')
const path = require('node:path')
const { fork, execFileSync } = require('node:child_process')

const CHUNKED_END = Buffer.from('0\r\n\r\n')
const HEADERS_END = Buffer.from('\r\n\r\n')

/**
 * What marks one message on the wire, per competitor. fastify-comet writes one script element per
 * write with many messages in it, so its messages are counted by the text every benchmark message
 * holds exactly once (`"hello"`, alone or as `text`), which closes each of them. The node:http
 * baselines keep the one-script-per-message format; SSE ends each event with a blank line.
 */
function terminatorOf (competitor) {
  if (competitor.includes('sse')) return '\n\n'
  return competitor.startsWith('fastify-comet') ? 'hello"' : '</script>'
}

// ---------------------------------------------------------------------------------------------
// Servers

/**
 * Starts one competitor server. In a child process by default (server and client do not share
 * a CPU or a heap); with `inproc` in this process. `execArgv` goes to the child (--expose-gc,
 * --cpu-prof ...).
 */
async function startServer (spec, { inproc = false, execArgv = [] } = {}) {
  if (inproc) {
    const server = await require(path.join(__dirname, spec.module ?? 'servers.js')).start(spec)
    return { port: server.port, pid: process.pid, call: server.command, close: async () => { await server.close() } }
  }
  const child = fork(path.join(__dirname, 'server-child.js'), [], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  const pending = new Map()
  let nextId = 0
  let exited = false
  const exitedPromise = new Promise(resolve => child.once('exit', (code, signal) => {
    exited = true
    for (const { reject } of pending.values()) reject(new Error(`server ${spec.competitor} exited (${signal ?? code})`))
    pending.clear()
    resolve()
  }))
  child.on('message', ({ id, result, error }) => {
    const waiter = pending.get(id)
    if (waiter === undefined) return
    pending.delete(id)
    if (error !== undefined) waiter.reject(new Error(`server ${spec.competitor}: ${error}`))
    else waiter.resolve(result)
  })
  const send = (message) => new Promise((resolve, reject) => {
    if (exited) return reject(new Error(`server ${spec.competitor} is gone`))
    const id = nextId++
    pending.set(id, { resolve, reject })
    child.send({ id, ...message })
  })
  const close = async () => {
    if (exited) return
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000)
    send({ cmd: 'exit' }).catch(() => {})
    await exitedPromise
    clearTimeout(timer)
  }
  let started
  try {
    started = await send({ cmd: 'start', spec })
  } catch (err) {
    await close() // a server that failed to start must not keep this process alive
    throw err
  }
  return { port: started.port, pid: started.pid, call: (cmd, args) => send({ cmd, args }), close }
}

// ---------------------------------------------------------------------------------------------
// Client

function connect (port) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', noDelay: true })
    socket.once('connect', () => { socket.off('error', reject); resolve(socket) })
    socket.once('error', reject)
  })
}

/** The request every client sends: a GET of `path` (the competitor's stream at `/` by default). */
function request (path = '/') {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: */*\r\n\r\n`
}

/**
 * One GET over a raw socket. Counts bytes and terminators, and resolves when the chunked
 * terminator `0\r\n\r\n` arrives (SSE plugins keep the socket open afterwards).
 * Resolves { bytes, messages, ms, arrivals } where arrivals[i] is the hrtime (bigint) at which
 * message i's terminator was seen, when `recordArrivals`.
 */
async function fetchStream (port, { terminator, recordArrivals = false, socket, path } = {}) {
  socket = socket ?? await connect(port)
  const term = Buffer.from(terminator)
  return new Promise((resolve, reject) => {
    let bytes = 0
    let messages = 0
    let carry = Buffer.alloc(0) // the last bytes of the previous chunk: a terminator may straddle
    let headerSeen = false
    const arrivals = []
    const started = process.hrtime.bigint()
    const onData = (chunk) => {
      const now = recordArrivals ? process.hrtime.bigint() : 0n
      bytes += chunk.length
      const buf = carry.length === 0 ? chunk : Buffer.concat([carry, chunk])
      let from = 0
      if (!headerSeen) {
        const end = buf.indexOf(HEADERS_END)
        if (end === -1) { carry = buf; return }
        const status = buf.toString('latin1', 0, 12)
        if (status !== 'HTTP/1.1 200') return fail(new Error(`unexpected response: ${buf.toString('latin1', 0, 200)}`))
        headerSeen = true
        from = end + HEADERS_END.length
      }
      let at = buf.indexOf(term, from)
      let after = from
      while (at !== -1) {
        messages++
        if (recordArrivals) arrivals.push(now)
        after = at + term.length
        at = buf.indexOf(term, after)
      }
      const keep = Math.max(after, buf.length - Math.max(term.length - 1, CHUNKED_END.length))
      carry = buf.subarray(keep)
      if (buf.length >= CHUNKED_END.length &&
          buf.compare(CHUNKED_END, 0, CHUNKED_END.length, buf.length - CHUNKED_END.length) === 0) {
        const ms = Number(process.hrtime.bigint() - started) / 1e6
        cleanup()
        socket.destroy()
        resolve({ bytes, messages, ms, arrivals })
      }
    }
    const onEnd = () => fail(new Error(`socket closed before the end of the response (${messages} messages)`))
    const fail = (err) => { cleanup(); socket.destroy(); reject(err) }
    const cleanup = () => {
      socket.off('data', onData)
      socket.off('close', onEnd)
      socket.off('error', fail)
    }
    socket.on('data', onData)
    socket.on('close', onEnd)
    socket.on('error', fail)
    socket.write(request(path))
  })
}

/**
 * Opens a stream and resolves with the socket once the response headers and the first body
 * bytes arrived (the handler ran and the stream is live). The socket is left flowing but
 * ignores further data unless `pause`. `path` is what it asks for (`/` by default).
 */
async function openStream (port, { pause = false, path } = {}) {
  const socket = await connect(port)
  await new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0)
    const onData = (chunk) => {
      buf = Buffer.concat([buf, chunk])
      const end = buf.indexOf(HEADERS_END)
      if (end === -1 || buf.length <= end + HEADERS_END.length) return
      if (buf.toString('latin1', 0, 12) !== 'HTTP/1.1 200') {
        return done(new Error(`unexpected response: ${buf.toString('latin1', 0, 200)}`))
      }
      done()
    }
    const onClose = () => done(new Error('socket closed before the stream opened'))
    const done = (err) => {
      socket.off('data', onData)
      socket.off('close', onClose)
      socket.off('error', done)
      if (err) { socket.destroy(); reject(err) } else resolve()
    }
    socket.on('data', onData)
    socket.on('close', onClose)
    socket.on('error', done)
    socket.write(request(path))
  })
  if (pause) socket.pause()
  else socket.on('data', noop)
  socket.on('error', noop)
  return socket
}

function noop () {}

/**
 * Opens `clients` idle clients, each holding a stream of every one of `paths` (openStream), 200
 * sockets at a time. Each batch's sockets go into `into` as they open, so whoever closes them
 * finds them there if a later batch fails.
 */
async function openClients (port, { clients, paths = ['/'], into = [] }) {
  const total = clients * paths.length
  for (let i = 0; i < total; i += 200) {
    const batch = []
    for (let j = i; j < Math.min(total, i + 200); j++) batch.push(openStream(port, { path: paths[j % paths.length] }))
    into.push(...await Promise.all(batch))
  }
  return into
}

// ---------------------------------------------------------------------------------------------
// Statistics and output

function sorted (values) {
  return [...values].sort((a, b) => a - b)
}

function median (values) {
  const s = sorted(values)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** Nearest-rank percentile. */
function percentile (values, p) {
  const s = sorted(values)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}

/** Competitor order for a round: forwards on even rounds, backwards on odd ones. */
function orderFor (competitors, round) {
  return round % 2 === 0 ? [...competitors] : [...competitors].reverse()
}

function table (headers, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`
  const rule = headers.map((h, i) => (i === 0 ? '---' : '---:'))
  return [line(headers), line(rule), ...rows.map(line)].join('\n')
}

function fmtInt (n) {
  return Math.round(n).toLocaleString('en-US')
}

function fmt (n, digits = 2) {
  return n.toFixed(digits)
}

/**
 * With COMET_DIST_BASELINE (servers.js), one line per competitor that has a baseline-build twin
 * in `names`: its ratio `ratioOf(name)` (higher is better) against the twin's, from the same run.
 * More than 5% lower is a regression (issue 8's bound).
 */
function buildComparison (names, ratioOf, what) {
  const { BASELINE_BUILD } = require('./servers.js')
  const lines = []
  for (const name of names) {
    if (name.endsWith(BASELINE_BUILD) || !names.includes(name + BASELINE_BUILD)) continue
    const now = ratioOf(name)
    const before = ratioOf(name + BASELINE_BUILD)
    const change = now / before
    lines.push(`- ${name}, ${what}: ${fmt(now)}x; baseline build ${fmt(before)}x; ${fmt(change)} of it: ` +
      (change >= 0.95 ? 'no regression (within 5%)' : 'REGRESSION (more than 5% lower)'))
  }
  return lines
}

function fmtBytes (n) {
  if (Math.abs(n) >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`
  if (Math.abs(n) >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${Math.round(n)} B`
}

/** The soft open-files limit of this shell, or Infinity when it cannot be read. */
function fdLimit () {
  try {
    const out = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim()
    return out === 'unlimited' ? Infinity : Number(out)
  } catch {
    return Infinity
  }
}

function log (...args) {
  process.stderr.write(args.join(' ') + '\n')
}

module.exports = {
  terminatorOf,
  startServer,
  connect,
  request,
  fetchStream,
  openStream,
  openClients,
  median,
  percentile,
  orderFor,
  table,
  fmt,
  fmtInt,
  fmtBytes,
  buildComparison,
  fdLimit,
  log
}
