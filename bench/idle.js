'use strict'

// 3. Idle streams: N open streams that send nothing. The server runs in its own process with
// --expose-gc; it is measured after GC before and after the streams open, and the difference is
// divided by N. The client's sockets live in this process and are not counted.

const { startServer, openStream, openClients, median, orderFor, table, fmt, fmtInt, fdLimit, log } = require('./common.js')
const { withBaselineBuild, BASELINE_BUILD } = require('./servers.js')

const COMPETITORS = withBaselineBuild([
  'plain node:http',
  'fastify hijack (no plugin)',
  'fastify-comet',
  'fastify-comet (helmet: false)',
  'fastify-comet (signal source)',
  'fastify-comet (channel source)',
  '@fastify/sse'
])
const BASELINE = 'plain node:http'
// Heap per stream allowed, as a multiple of the baseline (issue 8 for the channel and signal sources)
const TARGETS = {
  'fastify-comet': 1.5,
  'fastify-comet (helmet: false)': 1.5,
  'fastify-comet (signal source)': 1.6,
  'fastify-comet (channel source)': 1.3
}
// 'plain node:http' holds the open response and nothing else: the per-message server's idle mode
const SERVER_OF = { 'plain node:http': 'per-message' }

/**
 * `n` clients, each holding a stream of every one of `paths` (one stream of `/` by default), and
 * what the server's memory grew by, per client.
 */
async function measure (competitor, { n, paths = ['/'] }) {
  const server = await startServer(
    { competitor: SERVER_OF[competitor] ?? competitor, scenario: 'idle', params: {} },
    { execArgv: ['--expose-gc'] }
  )
  const sockets = []
  const streams = n * paths.length
  try {
    // one client's streams opened and closed first, so lazily loaded code is not counted per client
    for (const path of paths) (await openStream(server.port, { path })).destroy()
    await waitFor(async () => await server.call('open') === 0)
    const before = await server.call('memory')
    await openClients(server.port, { clients: n, paths, into: sockets })
    const open = await server.call('open')
    if (open !== streams) throw new Error(`${competitor}: ${open} of ${streams} streams open on the server`)
    const after = await server.call('memory')
    const per = (key) => (after[key] - before[key]) / n
    return { heap: per('heapUsed'), rss: per('rss'), external: per('external') }
  } finally {
    for (const socket of sockets) socket.destroy()
    await server.close()
  }
}

async function waitFor (check) {
  for (let i = 0; i < 100; i++) {
    if (await check()) return
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error('timed out')
}

async function run ({ quick, rounds: roundsOpt }) {
  const n = quick ? 500 : 10000
  const rounds = roundsOpt ?? (quick ? 1 : 3)
  const limit = fdLimit()
  if (limit < n + 200) {
    throw new Error(`idle needs ${n + 200} open files in this process, ulimit -n is ${limit}: raise it (ulimit -n ${n + 1000})`)
  }
  const results = Object.fromEntries(COMPETITORS.map(c => [c, { heap: [], rss: [], external: [] }]))
  for (let round = 0; round < rounds; round++) {
    for (const competitor of orderFor(COMPETITORS, round)) {
      const r = await measure(competitor, { n })
      for (const key of Object.keys(r)) results[competitor][key].push(r[key])
      log(`  idle round ${round + 1}/${rounds} ${competitor}: heap ${fmtInt(r.heap)} B/stream, rss ${fmtInt(r.rss)} B/stream`)
    }
  }
  const med = (c, key) => median(results[c][key])
  const rows = COMPETITORS.map(c => [
    c,
    fmtInt(med(c, 'heap')),
    `${fmt(med(c, 'heap') / med(BASELINE, 'heap'))}x`,
    fmtInt(med(c, 'rss')),
    `${fmt(med(c, 'rss') / med(BASELINE, 'rss'))}x`,
    fmtInt(med(c, 'external'))
  ])
  return [
    `### Idle streams: ${fmtInt(n)} open streams, server process only, after GC, median of ${rounds} round(s)`,
    '',
    table(['competitor', 'heap B/stream', `heap vs ${BASELINE}`, 'RSS B/stream', `RSS vs ${BASELINE}`, 'external B/stream'], rows),
    '',
    ...withBaselineBuild(Object.keys(TARGETS)).map(c => {
      const target = TARGETS[c.replace(BASELINE_BUILD, '')]
      const ratio = med(c, 'heap') / med(BASELINE, 'heap')
      return `- Target for ${c}: heap per stream <= ${target}x ${BASELINE}: ${fmt(ratio)}x ${ratio <= target ? 'MET' : 'MISSED'}`
    })
  ].join('\n')
}

module.exports = { name: 'idle', run, measure, COMPETITORS }
