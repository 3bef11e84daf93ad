'use strict'

// Where an idle stream's heap goes: heap snapshots of a competitor's server (in a child process)
// before and after N idle streams open, summed by node type and constructor, per stream.
//
//   node bench/heap.js 'fastify-comet (channel source)'                 per stream, by constructor
//   node bench/heap.js 'fastify-comet (channel source)' --against 'plain node:http'
//                                     the difference between two competitors, per stream
//   node bench/heap.js 'fastify-comet (3 channels)' --paths / --against-paths /a,/b,/c
//                                     per client: one multiplexed stream minus three single ones
//   options: --streams 2000 (clients; needs `ulimit -n` above their streams), --top 40,
//            --out /tmp/fastify-comet-heap, --paths and --against-paths (what each client asks
//            for, comma-separated; `/` by default)
//
// Self sizes only (no retained sizes): every row is what N more streams added, divided by N.
// Strings are grouped by type, not by content. Snapshots are written to --out and can be opened
// in Chrome DevTools (Memory tab, Comparison view) to see what retains what.

const fs = require('node:fs')
const path = require('node:path')
const { startServer, openStream, openClients, fmtInt, log } = require('./common.js')

// 'plain node:http' is the per-message server's idle mode, as in idle.js
const SERVER_OF = { 'plain node:http': 'per-message' }

function parseArgs (argv) {
  const options = { competitor: 'fastify-comet', against: undefined, streams: 2000, top: 40, out: '/tmp/fastify-comet-heap', paths: ['/'], againstPaths: ['/'] }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--against') options.against = argv[++i]
    else if (arg === '--streams') options.streams = Number(argv[++i])
    else if (arg === '--top') options.top = Number(argv[++i])
    else if (arg === '--out') options.out = argv[++i]
    else if (arg === '--paths') options.paths = argv[++i].split(',')
    else if (arg === '--against-paths') options.againstPaths = argv[++i].split(',')
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`)
    else options.competitor = arg
  }
  return options
}

/**
 * Snapshots before and after `streams` idle clients, each with a stream of every one of `paths`;
 * resolves with the per-client totals by key.
 */
async function perStream (competitor, { streams, out, paths }) {
  const server = await startServer(
    { competitor: SERVER_OF[competitor] ?? competitor, scenario: 'idle', params: {} },
    { execArgv: ['--expose-gc'] }
  )
  const sockets = []
  try {
    // lazily loaded code is not counted per stream
    for (const path of paths) (await openStream(server.port, { path })).destroy()
    const name = `${competitor}${paths.join('')}`.replace(/\W+/g, '-')
    const before = await server.call('snapshot', { file: path.join(out, `${name}-before.heapsnapshot`) })
    await openClients(server.port, { clients: streams, paths, into: sockets })
    const after = await server.call('snapshot', { file: path.join(out, `${name}-after.heapsnapshot`) })
    const totals = difference(totalsOf(after), totalsOf(before))
    for (const entry of totals.values()) {
      entry.count /= streams
      entry.size /= streams
    }
    return totals
  } finally {
    for (const socket of sockets) socket.destroy()
    await server.close()
  }
}

/** Count and self size of every node in a .heapsnapshot, by "type\tconstructor". */
function totalsOf (file) {
  const { snapshot, nodes, strings } = JSON.parse(fs.readFileSync(file, 'utf8'))
  const fields = snapshot.meta.node_fields
  const types = snapshot.meta.node_types[0]
  const [type, name, size] = ['type', 'name', 'self_size'].map(field => fields.indexOf(field))
  const totals = new Map()
  for (let i = 0; i < nodes.length; i += fields.length) {
    const kind = types[nodes[i + type]]
    const grouped = kind.includes('string') || kind === 'code' || kind === 'number'
    const key = `${kind}\t${grouped ? '' : strings[nodes[i + name]]}`
    const entry = totals.get(key) ?? { count: 0, size: 0 }
    entry.count++
    entry.size += nodes[i + size]
    totals.set(key, entry)
  }
  return totals
}

function difference (a, b) {
  const result = new Map()
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(key) ?? { count: 0, size: 0 }
    const y = b.get(key) ?? { count: 0, size: 0 }
    result.set(key, { count: x.count - y.count, size: x.size - y.size })
  }
  return result
}

function report (totals, { top, title, per }) {
  const rows = [...totals].filter(([, e]) => Math.abs(e.size) >= 1).sort((x, y) => y[1].size - x[1].size)
  const total = rows.reduce((sum, [, e]) => sum + e.size, 0)
  const shown = rows.slice(0, top).map(([key, e]) => `| ${key.replace('\t', ' | ')} | ${e.count.toFixed(2)} | ${fmtInt(e.size)} |`)
  return [
    `### ${title}`,
    '',
    `| node type | constructor | count per ${per} | self bytes per ${per} |`,
    '| --- | --- | ---: | ---: |',
    ...shown,
    `| all | | | ${fmtInt(total)} |`
  ].join('\n')
}

async function main () {
  const options = parseArgs(process.argv.slice(2))
  fs.mkdirSync(options.out, { recursive: true })
  const totals = await perStream(options.competitor, options)
  const named = (competitor, paths) => paths.length === 1 && paths[0] === '/' ? competitor : `${competitor} ${paths.join(' ')}`
  const [per, count] = options.paths.length === 1 && options.againstPaths.length === 1 ? ['stream', 'streams'] : ['client', 'clients']
  let title = `${named(options.competitor, options.paths)}: heap per idle ${per} (${fmtInt(options.streams)} ${count})`
  let shown = totals
  if (options.against !== undefined || options.againstPaths.join() !== '/') {
    const against = options.against ?? options.competitor
    shown = difference(totals, await perStream(against, { ...options, paths: options.againstPaths }))
    title = `${named(options.competitor, options.paths)} minus ${named(against, options.againstPaths)}: heap per idle ${per} (${fmtInt(options.streams)} ${count})`
  }
  log(`snapshots in ${options.out}`)
  process.stdout.write(report(shown, { ...options, title, per }) + '\n')
}

main().catch(err => {
  console.error(err)
  process.exitCode = 1
})
