'use strict'

// Several sources in one stream (issue 17): what a client with three channels costs the server
// as one multiplexed stream, `reply.comet({ a, b, c }, 'cb')`, against one stream per channel.
// The server is `fastify-comet (3 channels)` (servers.js threeChannels): GET / is the multiplexed
// stream, GET /a, /b and /c one channel each; plugin options as everywhere else. Its twin
// `... published in turn` publishes message n to channel n % 3 instead of always to a.
//
// - Heap per client: idle.js's measurement (server child with --expose-gc, after GC, before and
//   after N clients open their streams), each client holding the streams of its case.
// - Fan-out: fanout.js's measurement (N clients counting messages on raw sockets, the server
//   publishing M messages, BURST per turn of its event loop), each client holding one stream of
//   its case; every case delivers N x M messages.
//
// Both are ratios within one run, cases in alternating order from round to round.

const { median, orderFor, table, fmt, fmtInt, fdLimit, log } = require('./common.js')
const idle = require('./idle.js')
const fanout = require('./fanout.js')

const COMPETITOR = 'fastify-comet (3 channels)'

// Heap: what each client holds. Goal: multiplexed <= 0.5x three streams.
const HEAP_CASES = {
  '3 streams, one channel each': ['/a', '/b', '/c'],
  '1 multiplexed stream of 3 channels': ['/'],
  '1 stream of one channel (for scale)': ['/a']
}
const HEAP_BASELINE = '3 streams, one channel each'
const HEAP_TARGET = { case: '1 multiplexed stream of 3 channels', at: 0.5 }

// Fan-out: one stream per client, the same messages. Goal: each multiplexed case >= 0.9x.
const FANOUT_CASES = {
  '1 stream of channel a': { competitor: COMPETITOR, path: '/a' },
  'multiplexed {a, b, c}, every message on a': { competitor: COMPETITOR, path: '/' },
  'multiplexed {a, b, c}, messages on a, b, c in turn': { competitor: 'fastify-comet (3 channels, published in turn)', path: '/' }
}
const FANOUT_BASELINE = '1 stream of channel a'
const FANOUT_TARGET = 0.9

async function heap ({ quick, rounds: roundsOpt }) {
  const clients = quick ? 100 : 3000
  const rounds = roundsOpt ?? (quick ? 1 : 3)
  const cases = Object.keys(HEAP_CASES)
  const results = Object.fromEntries(cases.map(c => [c, { heap: [], rss: [] }]))
  for (let round = 0; round < rounds; round++) {
    for (const c of orderFor(cases, round)) {
      const r = await idle.measure(COMPETITOR, { n: clients, paths: HEAP_CASES[c] })
      results[c].heap.push(r.heap)
      results[c].rss.push(r.rss)
      log(`  multiplex heap round ${round + 1}/${rounds} ${c}: heap ${fmtInt(r.heap)} B/client, rss ${fmtInt(r.rss)} B/client`)
    }
  }
  const med = (c, key) => median(results[c][key])
  // within a round the cases run back to back: the median of per-round ratios is the steadier one
  const roundRatio = (c) => median(results[c].heap.map((h, round) => h / results[HEAP_BASELINE].heap[round]))
  const rows = cases.map(c => [
    c,
    String(HEAP_CASES[c].length),
    fmtInt(med(c, 'heap')),
    `${fmtInt(Math.min(...results[c].heap))} – ${fmtInt(Math.max(...results[c].heap))}`,
    `${fmt(med(c, 'heap') / med(HEAP_BASELINE, 'heap'))}x`,
    `${fmt(roundRatio(c))}x`,
    fmtInt(med(c, 'rss')),
    `${fmt(med(c, 'rss') / med(HEAP_BASELINE, 'rss'))}x`
  ])
  const ratio = med(HEAP_TARGET.case, 'heap') / med(HEAP_BASELINE, 'heap')
  return [
    `### Multiplexed streams, heap per client: ${fmtInt(clients)} idle clients with 3 channels (a, b, c), server process only, after GC, median of ${rounds} round(s)`,
    '',
    table(['each client holds', 'streams', 'heap B/client', 'min – max', `heap vs ${HEAP_BASELINE}`, 'median of per-round ratios', 'RSS B/client', 'RSS vs it'], rows),
    '',
    `- Target: ${HEAP_TARGET.case} <= ${HEAP_TARGET.at}x ${HEAP_BASELINE} (heap per client): ${fmt(ratio)}x ` +
      `${ratio <= HEAP_TARGET.at ? 'MET' : 'MISSED'} (per-round: ${fmt(roundRatio(HEAP_TARGET.case))}x)`
  ].join('\n')
}

async function fan ({ quick, inproc, rounds: roundsOpt, execArgv = [] }) {
  const clients = quick ? 100 : 1000
  const messages = quick ? 100 : 1000
  const rounds = roundsOpt ?? (quick ? 1 : 5)
  const cases = Object.keys(FANOUT_CASES)
  const deliveries = clients * messages
  const ms = Object.fromEntries(cases.map(c => [c, []]))
  const cpu = Object.fromEntries(cases.map(c => [c, []]))
  for (let round = 0; round < rounds; round++) {
    for (const c of orderFor(cases, round)) {
      const [r] = await fanout.measure(FANOUT_CASES[c].competitor, { clients, messages, path: FANOUT_CASES[c].path, inproc, execArgv })
      ms[c].push(r.ms)
      cpu[c].push(r.cpu)
      log(`  multiplex fanout round ${round + 1}/${rounds} ${c}: ${fmt(r.ms, 1)} ms, ${fmtInt(deliveries / (r.ms / 1000))} deliveries/s, ` +
        `${fmtInt(r.cpu)} ns CPU/delivery`)
    }
  }
  const rate = (c) => deliveries / (median(ms[c]) / 1000)
  const rates = (c) => ms[c].map(t => deliveries / (t / 1000))
  const roundRatio = (c) => median(ms[c].map((t, round) => ms[FANOUT_BASELINE][round] / t))
  const cpuRatio = (c) => median(cpu[FANOUT_BASELINE]) / median(cpu[c])
  const rows = cases.map(c => [
    c,
    fmtInt(rate(c)),
    `${fmtInt(Math.min(...rates(c)))} – ${fmtInt(Math.max(...rates(c)))}`,
    `${fmt(rate(c) / rate(FANOUT_BASELINE))}x`,
    `${fmt(roundRatio(c))}x`,
    fmt(median(ms[c]), 1),
    fmtInt(median(cpu[c])),
    `${fmt(cpuRatio(c))}x`
  ])
  const lines = [
    `### Multiplexed streams, fan-out: ${fmtInt(clients)} clients x ${fmtInt(messages)} messages (${fanout.BURST} published per event-loop turn), ` +
      `one stream per client, median of ${rounds} round(s)` + (inproc ? ' (servers in-process)' : ' (servers in a child process)'),
    '',
    table(['each client holds', 'deliveries/s (median)', 'min – max', `vs ${FANOUT_BASELINE}`, 'median of per-round ratios',
      'first publish -> last client has last message, ms', 'server CPU ns/delivery', `CPU: ${FANOUT_BASELINE} ÷ this`], rows),
    '',
    `deliveries/s = ${fmtInt(clients)} x ${fmtInt(messages)} / (first publish until the last client saw the last message); ` +
      'above 1 in the last column means cheaper.'
  ]
  for (const c of cases.filter(c => c !== FANOUT_BASELINE)) {
    const vs = rate(c) / rate(FANOUT_BASELINE)
    lines.push('', `Target for ${c}: >= ${FANOUT_TARGET}x ${FANOUT_BASELINE}: ${fmt(vs)}x ${vs >= FANOUT_TARGET ? 'MET' : 'MISSED'} ` +
      `(per-round: ${fmt(roundRatio(c))}x ${roundRatio(c) >= FANOUT_TARGET ? 'MET' : 'MISSED'}; CPU: ${fmt(cpuRatio(c))}x)`)
  }
  return lines.join('\n')
}

async function run (options) {
  const needed = (options.quick ? 300 : 9000) + 200 // the heap's three-stream case
  const limit = fdLimit()
  if (limit < needed) throw new Error(`multiplex needs ${needed} open files in this process, ulimit -n is ${limit}: raise it (ulimit -n ${needed + 1000})`)
  return `${await heap(options)}\n\n${await fan(options)}`
}

module.exports = { name: 'multiplex', run }
