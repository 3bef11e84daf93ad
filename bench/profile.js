'use strict'

// CPU profile of one competitor's server in the throughput (or fan-out) scenario, and a summary
// of where its self time goes.
//
//   node bench/profile.js                         fastify-comet, profile in /tmp/fastify-comet-prof
//   node bench/profile.js 'fastify-comet (helmet: false)' --streams 10 --out /tmp/p
//   node bench/profile.js --fanout [competitor] [--clients 2000] [--messages 1000] [--streams 5]
//                                                 fan-out: --streams measured publishes of
//                                                 --messages each to --clients streams
//   node bench/profile.js --fanout 'fastify-comet (3 channels)' --path /a
//                                                 the streams ask for --path (default /): here one
//                                                 channel of three, / being all three multiplexed
//   node bench/profile.js --redis-fanout [competitor] [--messages 1000] [--interval 1]
//                                                 Redis fan-out (bench/redis-fanout.js): one profile
//                                                 per instance, of --messages published one every
//                                                 --interval ms after the warm-up (default: the
//                                                 steady phase; fastify-comet + Redis)
//   node bench/profile.js --summarise FILE.cpuprofile
//
// The server runs in a child process under --cpu-prof and exits normally so the profile is
// written; the client (this process) is not profiled. COMET_DIST picks another build, as in run.js.

const fs = require('node:fs')
const path = require('node:path')
const { startServer, fetchStream, terminatorOf, fmt, log } = require('./common.js')
const { COMET_DIST } = require('./servers.js')
const fanout = require('./fanout.js')
const redisFanout = require('./redis-fanout.js')

function parseArgs (argv) {
  const options = {
    competitor: undefined,
    n: 200000,
    streams: undefined,
    out: '/tmp/fastify-comet-prof',
    summarise: undefined,
    top: 15,
    fanout: false,
    redisFanout: false,
    clients: 2000,
    messages: 1000,
    path: '/'
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--n') options.n = Number(argv[++i])
    else if (arg === '--streams') options.streams = Number(argv[++i])
    else if (arg === '--out') options.out = argv[++i]
    else if (arg === '--top') options.top = Number(argv[++i])
    else if (arg === '--summarise') options.summarise = argv[++i]
    else if (arg === '--fanout') options.fanout = true
    else if (arg === '--redis-fanout') options.redisFanout = true
    else if (arg === '--clients') options.clients = Number(argv[++i])
    else if (arg === '--messages') options.messages = Number(argv[++i])
    else if (arg === '--interval') options.interval = Number(argv[++i])
    else if (arg === '--path') options.path = argv[++i]
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`)
    else options.competitor = arg
  }
  options.streams ??= options.fanout ? 5 : 10
  options.competitor ??= options.redisFanout ? 'fastify-comet + Redis' : 'fastify-comet'
  return options
}

async function record ({ competitor, n, streams, out, fanout: isFanout, redisFanout: isRedisFanout, clients, messages, interval, path: streamPath }) {
  fs.mkdirSync(out, { recursive: true })
  const before = new Set(fs.readdirSync(out))
  if (isRedisFanout) return recordRedisFanout(competitor, { out, messages, interval, before })
  if (isFanout) {
    // only the measured publishes are profiled (through the inspector), not opening the streams
    const file = path.join(out, `fanout-${`${competitor}${streamPath}`.replace(/\W+/g, '-')}-${Date.now()}.cpuprofile`)
    const results = await fanout.measure(competitor, { clients, messages, repeat: streams, profile: file, path: streamPath })
    const ms = results.reduce((sum, r) => sum + r.ms, 0)
    log(`${competitor}: ${streams} x ${clients} clients x ${messages} messages (after one warm-up), ` +
      `${fmt((streams * clients * messages) / (ms / 1000), 0)} deliveries/s under the profiler`)
    return file
  }
  const server = await startServer(
    { competitor, scenario: 'throughput', params: { n } },
    { execArgv: ['--cpu-prof', '--cpu-prof-dir', out] }
  )
  const terminator = terminatorOf(competitor)
  let total = 0
  try {
    for (let i = 0; i < streams; i++) {
      const result = await fetchStream(server.port, { terminator })
      if (result.messages !== n) throw new Error(`received ${result.messages} of ${n} messages`)
      total += result.ms
    }
  } finally {
    await server.close()
  }
  log(`${competitor}: ${streams} x ${n} messages, ${fmt((streams * n) / (total / 1000), 0)} msg/s under the profiler`)
  return newProfile(out, before)
}

// Every instance profiles the steady-rate publish (after the warm-up) through the inspector.
async function recordRedisFanout (competitor, { out, messages, interval, before }) {
  const binary = redisFanout.findRedisServer()
  if (binary === undefined) throw new Error(redisFanout.INSTALL_HINT)
  const { clients, perInstance, warmup, phases } = redisFanout.settings(false)
  const inProcess = competitor === 'fastify-comet (in process)'
  const steady = { ...phases.find(phase => phase.name === 'steady'), messages }
  if (interval !== undefined) steady.interval = interval
  const redis = await redisFanout.startRedis(binary)
  try {
    const [result] = await redisFanout.measure(competitor, {
      redis,
      instances: inProcess ? 1 : redisFanout.INSTANCES,
      perInstance: inProcess ? clients : perInstance,
      warmup,
      phases: [steady],
      profile: out
    })
    log(`${competitor}: ${clients} clients x ${messages} messages, one every ${steady.interval} ms, ` +
      `${fmt((clients * messages) / (result.ms / 1000), 0)} deliveries/s, p50 ${fmt(result.p50, 1)} ms under the profiler`)
  } finally {
    await redis.stop()
  }
  return fs.readdirSync(out).filter(f => f.endsWith('.cpuprofile') && !before.has(f)).sort().map(f => path.join(out, f))
}

function newProfile (out, before) {
  const written = fs.readdirSync(out).filter(f => f.endsWith('.cpuprofile') && !before.has(f))
  if (written.length !== 1) throw new Error(`expected one new profile in ${out}, found ${written.length}`)
  return path.join(out, written[0])
}

/** Self time per function (name, file, line), in ms and as a share of all samples. */
function selfTimes (profile) {
  const byId = new Map(profile.nodes.map(node => [node.id, node]))
  const self = new Map()
  // timeDeltas[i + 1] is how long sample i was current
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i + 1] ?? 0
    const id = profile.samples[i]
    self.set(id, (self.get(id) ?? 0) + delta)
  }
  const totals = new Map()
  let all = 0
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame
    const file = url.replace(/^file:\/\//, '')
    const key = `${functionName || '(anonymous)'} ${file ? `${shorten(file)}:${lineNumber + 1}` : ''}`.trim()
    totals.set(key, (totals.get(key) ?? 0) + us)
    all += us
  }
  return { all, entries: [...totals].sort((a, b) => b[1] - a[1]) }
}

// Plugin code shows as dist/FILE wherever the build lives (see COMET_DIST in servers.js).
function shorten (file) {
  const dist = COMET_DIST + path.sep
  if (file.startsWith(dist)) return 'dist/' + file.slice(dist.length)
  const root = path.join(__dirname, '..') + path.sep
  return file.startsWith(root) ? file.slice(root.length) : file
}

function summarise (file, top) {
  const { all, entries } = selfTimes(JSON.parse(fs.readFileSync(file, 'utf8')))
  // (idle) is the event loop waiting (for the client, or between publishes): shares of busy time
  // say where the work goes
  const busy = all - entries.filter(([key]) => key === '(idle)').reduce((sum, [, us]) => sum + us, 0)
  const row = ([key, us]) => `| ${key} | ${fmt(us / 1000, 1)} | ${fmt((100 * us) / all, 1)}% | ${key === '(idle)' ? '' : fmt((100 * us) / busy, 1) + '%'} |`
  const header = '| function (file:line) | self ms | share | share of busy |\n| --- | ---: | ---: | ---: |'
  const dist = entries.filter(([key]) => / dist\/[^ ]*$/.test(key))
  const distTotal = dist.reduce((sum, [, us]) => sum + us, 0)
  return [
    `Profile: ${file} (${fmt(all / 1000, 0)} ms sampled, ${fmt(busy / 1000, 0)} ms busy)`,
    '',
    `Top ${top} self-time functions overall:`,
    '',
    header,
    ...entries.slice(0, top).map(row),
    '',
    `Self time in dist/ (lib/) code: ${fmt(distTotal / 1000, 1)} ms, ${fmt((100 * distTotal) / all, 1)}% of samples, ` +
      `${fmt((100 * distTotal) / busy, 1)}% of busy samples:`,
    '',
    header,
    ...dist.slice(0, top).map(row)
  ].join('\n')
}

async function main () {
  const options = parseArgs(process.argv.slice(2))
  const files = options.summarise !== undefined ? [options.summarise] : [await record(options)].flat()
  process.stdout.write(files.map(file => summarise(file, options.top)).join('\n\n') + '\n')
}

main().catch(err => {
  console.error(err)
  process.exitCode = 1
})
