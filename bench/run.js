'use strict'

// Runs the benchmark suite and prints markdown tables on stdout (progress goes to stderr).
//
//   node bench/run.js                      every benchmark
//   node bench/run.js throughput latency   only these
//   node bench/run.js browser-memory       the long rotation study: only when named (see EXTRA)
//   node --expose-gc bench/run.js redis-hang   heap while Redis hangs: only when named
//   node bench/run.js resume-storm         1,000 clients resuming at once through Redis: only when named
//   node bench/run.js redis-cluster        pub/sub on a local Redis Cluster against one redis-server: only when named
//   node bench/run.js --quick              short smoke run of each; exits 1 if one crashes
//   node bench/run.js --rounds 3           override the number of rounds (throughput, latency, idle)
//   node bench/run.js --inproc             servers in this process instead of a child process
//
// `npm run bench` builds dist/ first; `npm run bench -- --quick` passes the flag through.
// COMET_DIST=/some/dist node bench/run.js measures another build of the plugin.
// COMET_DIST_BASELINE=/old/dist adds a twin of every fastify-comet competitor built from there
// (throughput, idle, fanout; redis-fanout: the broker competitor), and says how the two builds' ratios compare in the same run.
// The idle benchmark opens 10,000 sockets in this process: needs `ulimit -n` above 10,200
// (fanout: 2,000 sockets, above 2,200; redis-fanout: 1,000 here and 1,000 in a server, above 2,200;
// multiplex: 9,000, above 9,200).
// redis-fanout starts its own redis-server (Debian's `apt-get install redis-server`), or is skipped;
// redis-cluster starts 7 (and needs redis-cli), or is skipped.
//
// A new benchmark is a module exporting { name, run(options) } that resolves to markdown; add
// it to BENCHMARKS below.

const os = require('node:os')
const fs = require('node:fs')
const path = require('node:path')
const { log } = require('./common.js')
const { COMET_DIST, COMET_DIST_BASELINE } = require('./servers.js')

const BENCHMARKS = {
  throughput: require('./throughput.js'),
  latency: require('./latency.js'),
  idle: require('./idle.js'),
  'slow-consumer': require('./slow-consumer.js'),
  fanout: require('./fanout.js'),
  browser: require('./browser.js'),
  'browser-shared': require('./browser-shared.js'),
  'redis-fanout': require('./redis-fanout.js'),
  'channel-churn': require('./channel-churn.js'),
  multiplex: require('./multiplex.js'),
  polling: require('./polling.js')
}
// Long studies behind a decision (the maxBytes default), and Redis under stress: run only when named.
const EXTRA = {
  'browser-memory': require('./browser-memory.js'),
  'redis-hang': require('./redis-hang.js'),
  'resume-storm': require('./resume-storm.js'),
  'redis-cluster': require('./redis-cluster.js')
}
const NAMED = { ...BENCHMARKS, ...EXTRA }

function parseArgs (argv) {
  const options = { quick: false, inproc: false, rounds: undefined, names: [] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--quick') options.quick = true
    else if (arg === '--inproc') options.inproc = true
    else if (arg === '--rounds') options.rounds = Number(argv[++i])
    else if (arg.startsWith('--rounds=')) options.rounds = Number(arg.slice('--rounds='.length))
    else if (arg === '--help' || arg === '-h') options.help = true
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`)
    else options.names.push(arg)
  }
  if (options.rounds !== undefined && !(Number.isInteger(options.rounds) && options.rounds > 0)) {
    throw new Error('--rounds expects a positive whole number')
  }
  for (const name of options.names) {
    if (!Object.hasOwn(NAMED, name)) throw new Error(`unknown benchmark ${name}; one of ${Object.keys(NAMED).join(', ')}`)
  }
  return options
}

function machine () {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  return `node ${process.version}, ${os.availableParallelism()} CPUs (${cpu}), ${os.platform()} ${os.release()}`
}

// The machine may be shared: the load says how much to trust a run.
function loadAverage () {
  return os.loadavg()[0].toFixed(2)
}

async function main () {
  const options = parseArgs(process.argv.slice(2))
  if (options.help) {
    process.stdout.write(`usage: node bench/run.js [--quick] [--inproc] [--rounds N] [${Object.keys(NAMED).join('|')} ...]\n`)
    return
  }
  if (!fs.existsSync(path.join(COMET_DIST, 'index.js'))) {
    throw new Error(`${COMET_DIST}/index.js is missing: run \`npm run build\` (or use \`npm run bench\`)`)
  }
  if (COMET_DIST_BASELINE !== undefined && !fs.existsSync(path.join(COMET_DIST_BASELINE, 'index.js'))) {
    throw new Error(`COMET_DIST_BASELINE: ${COMET_DIST_BASELINE}/index.js is missing`)
  }
  const names = options.names.length > 0 ? options.names : Object.keys(BENCHMARKS)
  const baseline = COMET_DIST_BASELINE === undefined ? '' : `; baseline build (competitors marked [baseline build]): ${COMET_DIST_BASELINE}`
  process.stdout.write(`## fastify-comet benchmarks${options.quick ? ' (--quick)' : ''}\n\n${machine()}\n\nPlugin: ${COMET_DIST}${baseline}\n`)
  let failed = 0
  for (const name of names) {
    log(`# ${name}`)
    const started = Date.now()
    const loadBefore = loadAverage()
    try {
      const markdown = await NAMED[name].run(options)
      const seconds = ((Date.now() - started) / 1000).toFixed(0)
      process.stdout.write(`\n${markdown}\n\n_${seconds} s; 1-minute load average ${loadBefore} before, ${loadAverage()} after_\n`)
    } catch (err) {
      failed++
      process.stdout.write(`\n### ${name}: FAILED\n\n\`\`\`\n${err.stack}\n\`\`\`\n`)
    }
    log(`# ${name} took ${((Date.now() - started) / 1000).toFixed(1)} s`)
  }
  if (failed > 0) {
    log(`${failed} benchmark(s) failed`)
    process.exitCode = 1
  }
}

main().catch(err => {
  console.error(err)
  process.exitCode = 1
})
