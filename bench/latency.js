'use strict'

// 2. Latency: a slow source yields one message every 10 ms. The server records
// process.hrtime.bigint() at each yield; the client records it when it sees that message's
// terminator. Both use the machine's monotonic clock, so the difference holds across processes.

const { startServer, fetchStream, terminatorOf, median, percentile, orderFor, table, fmt, log } = require('./common.js')

const COMPETITORS = ['per-message', 'fastify-comet']
const BASELINE = 'per-message'

async function measure (competitor, { n, interval, inproc, execArgv }) {
  const server = await startServer({ competitor, scenario: 'latency', params: { n, interval } }, { inproc, execArgv })
  try {
    const terminator = terminatorOf(competitor)
    await fetchStream(server.port, { terminator }) // warm-up
    await server.call('reset')
    const result = await fetchStream(server.port, { terminator, recordArrivals: true })
    const yields = (await server.call('yields')).map(BigInt)
    if (result.messages !== n || yields.length !== n) {
      throw new Error(`${competitor}: ${result.messages} messages seen, ${yields.length} yielded, ${n} expected`)
    }
    return yields.map((y, i) => Number(result.arrivals[i] - y) / 1e6)
  } finally {
    await server.close()
  }
}

async function run ({ quick, inproc, rounds: roundsOpt, execArgv = [] }) {
  const n = quick ? 20 : 100
  const interval = 10
  const rounds = roundsOpt ?? (quick ? 1 : 5)
  const samples = Object.fromEntries(COMPETITORS.map(c => [c, []]))
  const perRound = Object.fromEntries(COMPETITORS.map(c => [c, { p50: [], p99: [] }]))
  for (let round = 0; round < rounds; round++) {
    for (const competitor of orderFor(COMPETITORS, round)) {
      const latencies = await measure(competitor, { n, interval, inproc, execArgv })
      samples[competitor].push(...latencies)
      perRound[competitor].p50.push(median(latencies))
      perRound[competitor].p99.push(percentile(latencies, 99))
      log(`  latency round ${round + 1}/${rounds} ${competitor}: median ${fmt(median(latencies), 3)} ms, p99 ${fmt(percentile(latencies, 99), 3)} ms`)
    }
  }
  const rows = COMPETITORS.map(c => [
    c,
    fmt(median(samples[c]), 3),
    fmt(percentile(samples[c], 99), 3),
    fmt(Math.max(...samples[c]), 3),
    fmt(median(perRound[c].p99), 3),
    `${fmt(median(samples[c]) - median(samples[BASELINE]), 3)} / ${fmt(percentile(samples[c], 99) - percentile(samples[BASELINE], 99), 3)}`
  ])
  const lines = [
    `### Latency: ${n} messages, one every ${interval} ms, ${rounds} round(s) (${rounds * n} samples each), yield -> client sees the message`,
    '',
    table(['competitor', 'median ms', 'p99 ms', 'max ms', 'median of per-round p99 ms', `Δ vs ${BASELINE} median / p99 ms`], rows)
  ]
  const dMedian = median(samples['fastify-comet']) - median(samples[BASELINE])
  const dP99 = percentile(samples['fastify-comet'], 99) - percentile(samples[BASELINE], 99)
  lines.push('', `Target: comet within 1 ms of ${BASELINE}: median ${fmt(dMedian, 3)} ms, p99 ${fmt(dP99, 3)} ms ` +
    `${dMedian <= 1 && dP99 <= 1 ? 'MET' : 'MISSED'}`)
  return lines.join('\n')
}

module.exports = { name: 'latency', run, COMPETITORS }
