'use strict'

// 1. Single-stream throughput: N small messages from an async generator, one client reading as
// fast as it can. Every competitor runs in every round, in alternating order, each round in a
// fresh server process with one warm-up stream before the measured one.

const { startServer, fetchStream, terminatorOf, median, orderFor, table, fmt, fmtInt, buildComparison, log } = require('./common.js')
const { withBaselineBuild } = require('./servers.js')

const COMPETITORS = withBaselineBuild(['per-message', 'hand-coalesced', 'fastify-comet', 'fastify-comet (helmet: false)', '@fastify/sse', 'fastify-sse-v2'])
const COMETS = withBaselineBuild(['fastify-comet', 'fastify-comet (helmet: false)'])
const BASELINE = 'per-message'
const HAND = 'hand-coalesced'

async function measure (competitor, { n, warmup, streams, inproc, execArgv }) {
  const server = await startServer({ competitor, scenario: 'throughput', params: { n } }, { inproc, execArgv })
  try {
    const terminator = terminatorOf(competitor)
    for (let i = 0; i < warmup; i++) await fetchStream(server.port, { terminator })
    const rates = []
    const cpu = []
    let bytes = 0
    for (let i = 0; i < streams; i++) {
      const cpuBefore = await server.call('cpu')
      const result = await fetchStream(server.port, { terminator })
      const cpuAfter = await server.call('cpu')
      if (result.messages !== n) throw new Error(`${competitor}: received ${result.messages} of ${n} messages`)
      rates.push(n / (result.ms / 1000))
      cpu.push(((cpuAfter - cpuBefore) * 1000) / n) // ns of server CPU per message
      bytes = result.bytes
    }
    return { rates, cpu, bytes }
  } finally {
    await server.close()
  }
}

async function run ({ quick, inproc, only, rounds: roundsOpt, execArgv = [] }) {
  const n = quick ? 20000 : 200000
  const rounds = roundsOpt ?? (quick ? 2 : 5)
  const warmup = 1
  const streams = quick ? 1 : 3 // measured streams per round, one after the other
  const competitors = only ?? COMPETITORS
  const rates = Object.fromEntries(competitors.map(c => [c, []]))
  const cpu = Object.fromEntries(competitors.map(c => [c, []]))
  const bytes = {}
  for (let round = 0; round < rounds; round++) {
    for (const competitor of orderFor(competitors, round)) {
      const result = await measure(competitor, { n, warmup, streams, inproc, execArgv })
      rates[competitor].push(...result.rates)
      cpu[competitor].push(...result.cpu)
      bytes[competitor] = result.bytes
      log(`  throughput round ${round + 1}/${rounds} ${competitor}: ${result.rates.map(fmtInt).join(', ')} msg/s, ` +
        `${result.cpu.map(fmtInt).join(', ')} ns CPU/msg`)
    }
  }
  const med = Object.fromEntries(competitors.map(c => [c, median(rates[c])]))
  const medCpu = Object.fromEntries(competitors.map(c => [c, median(cpu[c])]))
  const ratio = (c, base) => med[base] === undefined ? 'n/a' : `${fmt(med[c] / med[base])}x`
  // CPU cost as a speed: baseline ns / competitor ns, so above 1 is better, like the msg/s ratios
  const cpuRatio = (c, base) => medCpu[base] === undefined ? 'n/a' : `${fmt(medCpu[base] / medCpu[c])}x`
  const rows = competitors.map(c => [
    c,
    fmtInt(med[c]),
    `${fmtInt(Math.min(...rates[c]))} – ${fmtInt(Math.max(...rates[c]))}`,
    ratio(c, BASELINE),
    ratio(c, HAND),
    fmtInt(medCpu[c]),
    cpuRatio(c, BASELINE),
    cpuRatio(c, HAND),
    fmtInt(bytes[c])
  ])
  const lines = [
    `### Throughput: ${fmtInt(n)} messages on one stream, median of ${rounds} rounds x ${streams} streams` +
      (inproc ? ' (servers in-process)' : ' (servers in a child process)'),
    '',
    table(['competitor', 'msg/s (median)', 'min – max', `vs ${BASELINE}`, `vs ${HAND}`,
      'server CPU ns/msg', `CPU: ${BASELINE} ÷ this`, `CPU: ${HAND} ÷ this`, 'bytes on the wire'], rows),
    '',
    'msg/s is wall clock (client sees the chunked terminator); server CPU is user+system time of the server ' +
      'process per message, which a busy machine disturbs less. CPU ratios are inverted so that above 1 means cheaper.'
  ]
  const sse = competitors.filter(c => c.includes('sse'))
  for (const c of COMETS) {
    if (med[c] === undefined || med[BASELINE] === undefined || med[HAND] === undefined) continue
    const vsBase = med[c] / med[BASELINE]
    const vsHand = med[c] / med[HAND]
    const cpuBase = medCpu[BASELINE] / medCpu[c]
    const cpuHand = medCpu[HAND] / medCpu[c]
    lines.push('', `Targets for ${c} (msg/s; server CPU): ` + [
      `>= 1.5x ${BASELINE}: ${fmt(vsBase)}x ${vsBase >= 1.5 ? 'MET' : 'MISSED'}; ${fmt(cpuBase)}x ${cpuBase >= 1.5 ? 'MET' : 'MISSED'}`,
      `>= 0.9x ${HAND}: ${fmt(vsHand)}x ${vsHand >= 0.9 ? 'MET' : 'MISSED'}; ${fmt(cpuHand)}x ${cpuHand >= 0.9 ? 'MET' : 'MISSED'}`,
      `ahead of ${sse.join(' and ')}: ${sse.every(s => med[c] > med[s]) ? 'MET' : 'MISSED'}; ${sse.every(s => medCpu[c] < medCpu[s]) ? 'MET' : 'MISSED'}`
    ].join(' | '))
  }
  if (med[BASELINE] !== undefined) {
    const comparison = [
      ...buildComparison(competitors, c => med[c] / med[BASELINE], `msg/s vs ${BASELINE}`),
      ...buildComparison(competitors, c => medCpu[BASELINE] / medCpu[c], `CPU: ${BASELINE} ÷ this`)
    ]
    if (comparison.length > 0) lines.push('', 'Against the baseline build (COMET_DIST_BASELINE), same run:', '', ...comparison)
  }
  return lines.join('\n')
}

module.exports = { name: 'throughput', run, COMPETITORS }
