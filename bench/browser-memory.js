'use strict'

// 7. Rotation from data (issue 10): one long stream (3,500,000 messages, about 110 MB on the wire)
// through the shipped client at several maxBytes, plugin defaults otherwise (helmet on). At every
// tenth of the stream the renderer is measured while it streams: in Chromium the JS heap and
// Blink's counters after a forced GC (CDP), and in both browsers the resident memory of the
// page's renderer process (Linux /proc; in Firefox without a GC, which WebDriver BiDi cannot
// force). msg/s includes the rotations (and the ten GCs), so it shows what rotation costs.
//
//   node bench/run.js browser-memory         (dist/ must be built; not part of a plain `npm run bench`)

const { setTimeout: sleep } = require('node:timers/promises')
const { startServer, table, fmt, fmtInt, fmtBytes, log } = require('./common.js')
const { pageUrl } = require('./browser-servers.js')
const { launch, waitForMessages } = require('./browsers.js')

const KiB = 1024
const MiB = 1024 * KiB
const MAX_BYTES = [128 * KiB, MiB, 8 * MiB, Infinity]
// Sample slots: 0-8 at 10%-90% of the stream, then at its end, 5 s later and after memory pressure.
const END = 9
const SETTLED = 10
const PURGED = 11
const SETTLE_MS = 5000

function label (maxBytes) {
  return maxBytes === Infinity ? 'Infinity' : maxBytes >= MiB ? `${maxBytes / MiB} MiB` : `${maxBytes / KiB} KiB`
}

async function measure (browser, maxBytes, n) {
  const server = await startServer({
    competitor: `fastify-comet (maxBytes: ${label(maxBytes)})`,
    scenario: 'browser',
    params: { n },
    options: { maxBytes: String(maxBytes) } // IPC is JSON: no Infinity
  })
  let tab
  try {
    tab = await browser.open(pageUrl(server.port, 'fastify-comet', n))
    // samples[i < END]: at the first poll past (i + 1) tenths of the stream (a tenth the page
    // went through between two polls has none)
    const samples = []
    const sample = async (i, count, purge) => {
      const memory = await tab.memory({ purge })
      const rss = await tab.rendererRss()
      samples[i] = { count, memory, rss }
    }
    const page = await waitForMessages(tab, n, {
      async onProgress ({ count }) {
        const tenths = Math.min(END, Math.floor(count * 10 / n))
        if (tenths > 0 && samples[tenths - 1] === undefined) await sample(tenths - 1, count)
      }
    })
    await sample(END, n)
    // The last document is still open: what stays once the page has been idle a while, and (in
    // Chromium) once it was told memory is short, says what the stream holds and what is cache.
    await sleep(SETTLE_MS)
    await sample(SETTLED, n)
    if (browser.heap) await sample(PURGED, n, true)
    const final = await tab.evaluate(() => ({ count: window.bench.count, outOfOrder: window.bench.outOfOrder }))
    if (final.count !== n || final.outOfOrder !== 0) {
      throw new Error(`maxBytes ${label(maxBytes)}: the page got ${final.count} of ${n} messages, ${final.outOfOrder} out of order`)
    }
    const wire = await server.call('wire')
    return {
      rate: n / (page.ms / 1000),
      rotations: page.rotations,
      rotationMs: page.rotations === 0 ? undefined : page.rotationMs / page.rotations,
      documents: wire.documents,
      bytes: wire.bytes,
      samples
    }
  } finally {
    await tab?.close()
    await server.close()
  }
}

function range (values, format) {
  const defined = values.filter(v => v !== undefined) // tenths without a sample, or no RSS
  if (defined.length === 0) return 'n/a'
  return `${format(Math.min(...defined))} – ${format(Math.max(...defined))} (last ${format(defined[defined.length - 1])})`
}

function report (browser, n, results) {
  const rows = MAX_BYTES.map(maxBytes => {
    const r = results.get(maxBytes)
    const s = r.samples.slice(0, END + 1) // while streaming and at the end
    return [
      label(maxBytes),
      fmtInt(r.rate),
      fmtInt(r.documents),
      r.rotationMs === undefined ? '–' : fmt(r.rotationMs, 1),
      fmt(r.bytes / n),
      browser.heap ? range(s.map(x => x?.memory.heap), fmtBytes) : 'n/a',
      browser.heap ? range(s.map(x => x?.memory.nodes), fmtInt) : 'n/a',
      browser.heap ? range(s.map(x => x?.memory.documents), fmtInt) : 'n/a',
      range(s.map(x => x?.rss), fmtBytes)
    ]
  })
  const unbounded = results.get(Infinity).rate
  const lines = [
    `### Rotation: ${browser.title} (headless), one stream of ${fmtInt(n)} messages ` +
      `(${fmtBytes(results.get(Infinity).bytes)} on the wire) through the shipped client, by maxBytes`,
    '',
    table(['maxBytes', 'msg/s', 'documents', 'ms per rotation', 'bytes/msg',
      'JS heap after GC, min – max', 'DOM nodes after GC', 'documents after GC', 'renderer RSS' + (browser.heap ? '' : ' (no GC)')], rows),
    '',
    'Ranges: the samples at every tenth of the stream (while it streams) and at its end. msg/s (vs maxBytes Infinity: ' +
      MAX_BYTES.map(m => `${label(m)} ${fmt(results.get(m).rate / unbounded)}x`).join(', ') + ') includes rotations and the samples. ' +
      'ms per rotation: in the page, from a document\'s end to the next document\'s first message. ' +
      (browser.heap
        ? 'Heap, nodes and documents: CDP after `HeapProfiler.collectGarbage` (the renderer\'s main V8 heap, which the comet iframe shares; Blink\'s counters for the whole renderer process). '
        : 'No JS heap or GC counts: WebDriver BiDi has neither. ') +
      'Renderer RSS: /proc of the busiest renderer (Chromium) or content process (Firefox), the whole process.'
  ]
  // The curve: memory as the stream goes on.
  const header = ['sample', ...MAX_BYTES.map(m => `maxBytes ${label(m)}`)]
  const curve = []
  const names = [...Array.from({ length: END }, (_, i) => `${(i + 1) * 10}%`), 'end', `end + ${SETTLE_MS / 1000} s`]
  if (browser.heap) names.push('then memory pressure')
  for (let i = 0; i < names.length; i++) {
    curve.push([
      names[i],
      ...MAX_BYTES.map(m => {
        const s = results.get(m).samples[i]
        if (s === undefined) return '–'
        const rss = s.rss === undefined ? 'n/a' : fmtBytes(s.rss)
        return browser.heap ? `${fmtBytes(s.memory.heap)} / ${fmtInt(s.memory.nodes)} / ${rss}` : rss
      })
    ])
  }
  lines.push('', (browser.heap ? 'JS heap / DOM nodes (after GC) / renderer RSS' : 'Renderer RSS') +
    `, as the stream goes on; then with the last document still open, after ${SETTLE_MS / 1000} s idle` +
    (browser.heap ? ' and after a simulated critical memory pressure (CDP `Memory.simulatePressureNotification`):' : ':'),
  '', table(header, curve))
  return lines.join('\n')
}

async function runBrowser (name, n) {
  const browser = await launch(name)
  if (browser.skipped !== undefined) {
    log(`  ${browser.skipped}`)
    return `${browser.skipped}\n`
  }
  const results = new Map()
  try {
    for (const maxBytes of MAX_BYTES) {
      const result = await measure(browser, maxBytes, n)
      results.set(maxBytes, result)
      const last = result.samples[END]
      log(`  ${browser.title} maxBytes ${label(maxBytes)}: ${fmtInt(result.rate)} msg/s, ${result.documents} documents, ` +
        `renderer RSS ${last.rss === undefined ? 'n/a' : fmtBytes(last.rss)}` +
        (last.memory === undefined ? '' : `, heap ${fmtBytes(last.memory.heap)}, ${last.memory.nodes} nodes`))
    }
  } finally {
    await browser.close()
  }
  return report(browser, n, results)
}

async function run ({ quick }) {
  const n = quick ? 100000 : 3500000
  const parts = []
  for (const name of ['chromium', 'firefox']) parts.push(await runBrowser(name, n))
  return parts.join('\n\n')
}

module.exports = { name: 'browser-memory', run }
