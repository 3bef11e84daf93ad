'use strict'

// 7. Rotation from data (issue 10): long streams through the shipped client at several maxBytes,
// plugin defaults otherwise (helmet on), in Chromium and Firefox ESR.
//
// - full speed: 3,500,000 messages (about 110 MB on the wire), the page counting as fast as it
//   can. Memory while it streams and what rotation costs in msg/s.
// - slow page: 1,000,000 messages to a page whose handler also runs a loop per message, so the
//   server could write faster than the page handles: how far ahead of the page the stream gets.
//
// At every tenth of a stream the renderer is measured while it streams: in Chromium the JS heap
// and Blink's counters after a forced GC (CDP), in both browsers the resident memory of the page's
// renderer process (Linux /proc; in Firefox without a GC, which WebDriver BiDi cannot force). At
// every poll (4 a second) the server says how many messages it has written: minus what the page
// has handled, that is what waits in the kernel and the browser.
//
//   node bench/run.js browser-memory         (dist/ must be built; not part of a plain `npm run bench`)

const { setTimeout: sleep } = require('node:timers/promises')
const { startServer, table, fmt, fmtInt, fmtBytes, log } = require('./common.js')
const { pageUrl } = require('./browser-servers.js')
const { launch, waitForMessages } = require('./browsers.js')

const KiB = 1024
const MiB = 1024 * KiB

const SCENARIOS = [
  { name: 'full speed', n: 3500000, quickN: 100000, work: 0, maxBytes: [128 * KiB, MiB, 4 * MiB, 8 * MiB, Infinity], curve: true },
  { name: 'slow page', n: 1000000, quickN: 50000, work: 3000, maxBytes: [MiB, 8 * MiB, Infinity], curve: false }
]

// Sample slots: 0-8 at 10%-90% of the stream, then at its end, 5 s later and after memory pressure.
const END = 9
const SETTLED = 10
const PURGED = 11
const SETTLE_MS = 5000

function label (maxBytes) {
  return maxBytes === Infinity ? 'Infinity' : maxBytes >= MiB ? `${maxBytes / MiB} MiB` : `${maxBytes / KiB} KiB`
}

async function measure (browser, maxBytes, n, work, inproc) {
  const server = await startServer({
    competitor: `fastify-comet (maxBytes: ${label(maxBytes)})`,
    scenario: 'browser',
    params: { n },
    options: { maxBytes: String(maxBytes) } // IPC is JSON: no Infinity
  }, { inproc })
  let tab
  try {
    tab = await browser.open(pageUrl(server.port, 'fastify-comet', n, work))
    // samples[i < END]: at the first poll past (i + 1) tenths of the stream (a tenth the page
    // went through between two polls has none)
    const samples = []
    const sample = async (i, count, purge) => {
      const memory = await tab.memory({ purge })
      const rss = await tab.rendererRss()
      samples[i] = { count, memory, rss }
    }
    let ahead = 0 // the most messages written by the server and not yet handled by the page
    const page = await waitForMessages(tab, n, {
      async onProgress ({ count }) {
        const { pulled } = await server.call('wire')
        ahead = Math.max(ahead, pulled - count)
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
      rotationMs: page.rotations === 0 ? undefined : page.rotationMs / page.rotations,
      documents: wire.documents,
      bytes: wire.bytes,
      ahead,
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
  return `${format(Math.min(...defined))} – ${format(Math.max(...defined))}`
}

function rssOf (sample) {
  return sample?.rss === undefined ? 'n/a' : fmtBytes(sample.rss)
}

function report (browser, scenario, n, results) {
  const { maxBytes } = scenario
  const rows = maxBytes.map(m => {
    const r = results.get(m)
    const streaming = r.samples.slice(0, END + 1) // while streaming and at the end
    const perMessage = r.bytes / n
    return [
      label(m),
      fmtInt(r.rate),
      fmtInt(r.documents),
      r.rotationMs === undefined ? '–' : fmt(r.rotationMs, 1),
      fmt(perMessage),
      `${fmtInt(r.ahead)} (${fmtBytes(r.ahead * perMessage)})`,
      browser.heap ? range(streaming.map(x => x?.memory.heap), fmtBytes) : 'n/a',
      browser.heap ? range(streaming.map(x => x?.memory.nodes), fmtInt) : 'n/a',
      browser.heap ? range(streaming.map(x => x?.memory.documents), fmtInt) : 'n/a',
      range(streaming.map(x => x?.rss), fmtBytes),
      rssOf(r.samples[SETTLED])
    ]
  })
  const unbounded = results.get(Infinity).rate
  const lines = [
    `### Rotation, ${scenario.name}: ${browser.title} (headless), one stream of ${fmtInt(n)} messages ` +
      `(${fmtBytes(results.get(Infinity).bytes)} on the wire)${scenario.work > 0 ? `, handler loop of ${fmtInt(scenario.work)} steps per message` : ''}, by maxBytes`,
    '',
    table(['maxBytes', 'msg/s', 'documents', 'ms per rotation', 'bytes/msg', 'written, not yet handled (max)',
      'JS heap after GC', 'DOM nodes after GC', 'documents after GC', `renderer RSS${browser.heap ? '' : ' (no GC)'}`,
      `renderer RSS ${SETTLE_MS / 1000} s after the end`], rows),
    '',
    'msg/s (vs Infinity: ' + maxBytes.map(m => `${label(m)} ${fmt(results.get(m).rate / unbounded)}x`).join(', ') +
      ') includes rotations and the samples. ms per rotation: in the page, from a document\'s end to the next ' +
      'document\'s first message. Written, not yet handled: the most messages the server had written beyond what the ' +
      'page had counted, at any poll (they wait in the kernel and the browser). Ranges: the samples at every tenth of ' +
      'the stream and at its end. ' +
      (browser.heap
        ? 'Heap, nodes and documents: CDP after `HeapProfiler.collectGarbage` (the renderer\'s main V8 heap, which the ' +
          'comet iframe shares; Blink\'s counters for the whole renderer process). '
        : 'No JS heap or GC counts: WebDriver BiDi has neither. ') +
      'Renderer RSS: /proc of the busiest renderer (Chromium) or content process (Firefox), the whole process.'
  ]
  if (scenario.curve) lines.push('', curve(browser, maxBytes, results))
  return lines.join('\n')
}

// Memory as the stream goes on, then with the last document still open.
function curve (browser, maxBytes, results) {
  const names = [...Array.from({ length: END }, (_, i) => `${(i + 1) * 10}%`), 'end', `end + ${SETTLE_MS / 1000} s`]
  if (browser.heap) names.push('then memory pressure')
  const rows = names.map((name, i) => [name, ...maxBytes.map(m => {
    const s = results.get(m).samples[i]
    if (s === undefined) return '–'
    return browser.heap ? `${fmtBytes(s.memory.heap)} / ${fmtInt(s.memory.nodes)} / ${rssOf(s)}` : rssOf(s)
  })])
  return (browser.heap ? 'JS heap / DOM nodes (after GC) / renderer RSS' : 'Renderer RSS') +
    `, as the stream goes on; then with the last document still open, ${SETTLE_MS / 1000} s later` +
    (browser.heap ? ' and after a simulated critical memory pressure (CDP `Memory.simulatePressureNotification`):' : ':') +
    '\n\n' + table(['sample', ...maxBytes.map(m => `maxBytes ${label(m)}`)], rows)
}

async function runBrowser (name, { quick, inproc }) {
  const browser = await launch(name)
  if (browser.skipped !== undefined) {
    log(`  ${browser.skipped}`)
    return browser.skipped
  }
  const parts = []
  try {
    for (const scenario of SCENARIOS) {
      const n = quick ? scenario.quickN : scenario.n
      const results = new Map()
      for (const maxBytes of scenario.maxBytes) {
        const result = await measure(browser, maxBytes, n, scenario.work, inproc)
        results.set(maxBytes, result)
        const last = result.samples[END]
        log(`  ${browser.title} ${scenario.name} maxBytes ${label(maxBytes)}: ${fmtInt(result.rate)} msg/s, ` +
          `${result.documents} documents, ${fmtInt(result.ahead)} ahead, renderer RSS ${rssOf(last)}` +
          (last.memory === undefined ? '' : `, heap ${fmtBytes(last.memory.heap)}, ${last.memory.nodes} nodes`))
      }
      parts.push(report(browser, scenario, n, results))
    }
  } finally {
    await browser.close()
  }
  return parts.join('\n\n')
}

async function run (options) {
  const parts = []
  for (const name of ['chromium', 'firefox']) parts.push(await runBrowser(name, options))
  return parts.join('\n\n')
}

module.exports = { name: 'browser-memory', run }
