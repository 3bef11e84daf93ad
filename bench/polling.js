'use strict'

// Polling through a hop that buffers each response whole (issue 19): a feed of 10 messages a second
// for 30 s, each stamped with process.hrtime at its publish, to one client. Per competitor: the
// delay from publish to the client (the machine's monotonic clock, in both processes), requests
// and bytes per message on the client's side of the hop, and whether every message came once.
//   fastify-comet, streaming, direct           the forever document, no hop (the reference)
//   fastify-comet, JSON polls through the proxy   ?transport=poll with Comet-Format: json (what the
//     shipped client's fetch() polls ask), again at once with ?lastEventId=
//   fastify-comet, document polls through the proxy   ?transport=poll (a frame's polls), and the
//     same with helmet: false (how much of a document poll's bytes are the security headers)
//   socket.io, long-polling through the proxy  socket.io-client with transports: ['polling']
// The clients run in this process, node-side (no browser): the comet ones read the wire format
// with a regular expression over the entries of the stamped messages, as the shipped client's
// polls do: the next poll is sent when the last one ended, from the last id. Bytes are counted on
// the client's sockets (head, padding and body; request bytes apart).

const http = require('node:http')
const { once } = require('node:events')
const { setTimeout: sleep } = require('node:timers/promises')
const { startServer, median, percentile, table, fmt, fmtInt, log } = require('./common.js')

const INTERVAL = 100 // ms: 10 messages a second

const COMPETITORS = [
  { name: 'fastify-comet, streaming, direct', server: 'fastify-comet', client: streamingClient, hop: false },
  { name: 'fastify-comet, JSON polls through the proxy', server: 'fastify-comet', client: pollingClient({ 'comet-format': 'json' }), hop: true },
  { name: 'fastify-comet, document polls through the proxy', server: 'fastify-comet', client: pollingClient({}), hop: true },
  { name: 'fastify-comet (helmet: false), document polls through the proxy', server: 'fastify-comet (helmet: false)', client: pollingClient({}), hop: true },
  { name: 'socket.io, long-polling through the proxy', server: 'socket.io', client: socketIoClient, hop: true }
]
const BASELINE = COMPETITORS[0].name

// A comet entry of a stamped message: `1,{"n":N,"t":T,"text":"hello"},"ID",` (`]` after the last
// of a JSON poll).
const ENTRY = /1,\{"n":(\d+),"t":(\d+),"text":"hello"\},"([^"]*)"[,\]]/g

const nowUs = () => Number(process.hrtime.bigint() / 1000n)

/**
 * A proxy that passes each response on only once it has ended, whole, with a Content-Length (the
 * behaviour test/buffering-proxy.ts has, which the tests check), counting the requests and the
 * bytes on its client side.
 */
async function startProxy (upstreamPort) {
  const sockets = new Set()
  let closedDown = 0
  let closedUp = 0
  let requests = 0
  const server = http.createServer((req, res) => {
    requests++
    const headers = { ...req.headers }
    delete headers.connection
    const forwarded = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers })
    req.pipe(forwarded)
    res.on('close', () => { if (!res.writableFinished) forwarded.destroy() })
    forwarded.on('error', () => res.destroy())
    forwarded.on('response', upstream => {
      const chunks = []
      upstream.on('data', chunk => chunks.push(chunk))
      upstream.on('end', () => {
        const body = Buffer.concat(chunks)
        const head = { ...upstream.headers, 'content-length': body.length }
        delete head['transfer-encoding']
        delete head.connection
        res.writeHead(upstream.statusCode, head)
        res.end(body)
      })
    })
  })
  server.on('connection', socket => {
    sockets.add(socket)
    socket.on('close', () => {
      sockets.delete(socket)
      closedDown += socket.bytesWritten
      closedUp += socket.bytesRead
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const counts = () => {
    let down = closedDown
    let up = closedUp
    for (const socket of sockets) {
      down += socket.bytesWritten
      up += socket.bytesRead
    }
    return { requests, down, up }
  }
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    counts,
    close: () => { server.closeAllConnections(); server.close() }
  }
}

/** Reads comet entries out of text that arrives in pieces; `receive(n, t, id)` for each. */
function entryReader (receive) {
  let carry = ''
  return chunk => {
    const text = carry + chunk
    let end = 0
    for (const match of text.matchAll(ENTRY)) {
      receive(Number(match[1]), Number(match[2]), match[3])
      end = match.index + match[0].length
    }
    carry = text.slice(Math.max(end, text.length - 256))
  }
}

/** One forever document, read as it comes. */
async function streamingClient (url, receive) {
  const req = http.get(`${url}/events`, { agent: false })
  const [res] = await once(req, 'response')
  res.setEncoding('utf8')
  const read = entryReader((n, t) => receive(n, t))
  res.on('data', read)
  res.on('error', () => {})
  req.on('error', () => {})
  return {
    counts: () => ({ requests: 1, down: req.socket.bytesRead, up: req.socket.bytesWritten }),
    stop: () => req.destroy()
  }
}

/** Polls in a loop over one kept-alive connection, each from the last id received, with `headers`. */
function pollingClient (headers) {
  return async (url, receive) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
    let stopped = false
    let current // the poll under way
    let cursor
    const poll = async () => {
      const query = cursor === undefined ? '' : `&lastEventId=${encodeURIComponent(cursor)}`
      current = http.get(`${url}/events?transport=poll${query}`, { agent, headers })
      current.on('error', () => {}) // once() and the loop below see it
      const [res] = await once(current, 'response')
      if (res.statusCode !== 200) throw new Error(`poll answered ${res.statusCode}`)
      res.setEncoding('utf8')
      const read = entryReader((n, t, id) => { receive(n, t); cursor = id })
      for await (const chunk of res) read(chunk)
    }
    const failed = (async () => {
      for (;;) await poll() // until stop() makes a poll fail
    })().catch(err => { if (!stopped) throw err; return new Promise(() => {}) })
    return {
      failed, // rejects if a poll fails; never resolves otherwise
      stop: () => {
        stopped = true
        current?.destroy()
        agent.destroy()
      }
    }
  }
}

/** socket.io-client forced to long-polling. */
async function socketIoClient (url, receive) {
  const { io } = require('socket.io-client')
  const socket = io(url, { transports: ['polling'], forceNew: true, reconnection: false })
  socket.on('m', message => receive(message.n, message.t))
  await once(socket, 'connect')
  return { stop: () => socket.close() }
}

async function measure (competitor, count) {
  const server = await startServer({ competitor: competitor.server, scenario: 'polling', module: 'polling-servers.js', params: {} })
  const proxy = competitor.hop ? await startProxy(server.port) : undefined
  const delays = new Map() // n -> ms from its publish to its first arrival
  const order = [] // every n as it arrived, repeats included
  let all
  const everything = new Promise(resolve => { all = resolve })
  const receive = (n, t) => {
    order.push(n)
    if (!delays.has(n)) delays.set(n, (nowUs() - t) / 1000)
    if (delays.size === count) all()
  }
  let client
  try {
    client = await competitor.client(proxy?.url ?? `http://127.0.0.1:${server.port}`, receive)
    while (await server.call('subscribers') === 0) await sleep(10) // until the first stream or poll is subscribed
    const { failed } = await server.call('publish', { from: 1, count, interval: INTERVAL })
    if (failed > 0) throw new Error(`${competitor.name}: ${failed} publishes failed`)
    let timer
    const late = new Promise((resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`${competitor.name}: ${delays.size} of ${count} messages arrived`)), 10000)
    })
    await Promise.race([everything, late, client.failed ?? everything]).finally(() => clearTimeout(timer))
    const counted = (proxy ?? client).counts() // from the first request: a session's whole cost
    return {
      delays: [...delays.values()],
      intact: order.length === count && order.every((n, i) => n === i + 1),
      requests: counted.requests,
      down: counted.down,
      up: counted.up
    }
  } finally {
    client?.stop()
    proxy?.close()
    await server.close()
  }
}

async function run ({ quick }) {
  const seconds = quick ? 1 : 30
  const count = seconds * 1000 / INTERVAL
  const results = {}
  for (const competitor of COMPETITORS) {
    const result = await measure(competitor, count)
    results[competitor.name] = result
    log(`  polling ${competitor.name}: p50 ${fmt(median(result.delays), 1)} ms, p95 ${fmt(percentile(result.delays, 95), 1)} ms, ` +
      `${fmt(result.requests / count)} requests and ${fmtInt(result.down / count)} B a message`)
  }
  const rows = COMPETITORS.map(({ name }) => {
    const r = results[name]
    return [
      name,
      r.intact ? `${count}, once each, in order` : 'LOST, REPEATED OR OUT OF ORDER',
      fmt(median(r.delays), 1),
      fmt(percentile(r.delays, 95), 1),
      fmt(Math.max(...r.delays), 1),
      fmt(r.requests / count, 3),
      fmtInt(r.down / count),
      fmtInt(r.up / count)
    ]
  })
  const comet = results['fastify-comet, JSON polls through the proxy']
  const socketIo = results['socket.io, long-polling through the proxy']
  const p95Ratio = percentile(comet.delays, 95) / percentile(socketIo.delays, 95)
  const downRatio = comet.down / socketIo.down
  const bothRatio = (comet.down + comet.up) / (socketIo.down + socketIo.up)
  const verdict = ratio => ratio <= 1 ? 'met' : 'missed'
  const streaming = results[BASELINE]
  return [
    `### Polling through a whole-response buffering proxy: ${count} messages, one every ${INTERVAL} ms, publish -> client (node-side clients)`,
    '',
    table(['competitor', 'messages', 'p50 ms', 'p95 ms', 'max ms', 'requests / message', 'bytes / message to the client', 'bytes / message from the client'], rows),
    '',
    `Goal: comet's polling no worse than socket.io's in delay and bytes per message: p95 ${fmt(p95Ratio)}x socket.io's (${verdict(p95Ratio)}); ` +
      `bytes a message to the client ${fmt(downRatio)}x (${verdict(downRatio)}), both ways ${fmt(bothRatio)}x (${verdict(bothRatio)})`,
    '',
    `Against ${BASELINE}: polling through the proxy adds ${fmt(median(comet.delays) - median(streaming.delays), 1)} ms at p50 and ` +
      `${fmt(percentile(comet.delays, 95) - percentile(streaming.delays, 95), 1)} ms at p95, and carries ${fmt(comet.down / streaming.down)}x the bytes`
  ].join('\n')
}

module.exports = { name: 'polling', run, COMPETITORS }
