'use strict'

// 6. Browser: how many messages a page absorbs, end to end, in headless Chromium and Firefox ESR.
// Each run: a fresh server process (bench/browser-servers.js) and a fresh browser context; the
// page opens the stream after 'load' (the shipped client, or EventSource) and counts messages in
// its handler. msg/s = messages / (page opens the stream -> the n-th message handled), clocked in
// the page. Then the renderer is measured after a forced GC (Chromium, through CDP), the live DOM
// counted in the page and its frames, and the bytes the server wrote on the stream's sockets.

const { setTimeout: sleep } = require('node:timers/promises')
const { startServer, median, orderFor, table, fmt, fmtInt, fmtBytes, log } = require('./common.js')
const { pageUrl } = require('./browser-servers.js')
const { launch, waitForMessages, GaveUp } = require('./browsers.js')

const DEFAULTS = 'fastify-comet'
const UNBOUNDED = 'fastify-comet (maxBytes: Infinity)'
const NO_HELMET = 'fastify-comet (helmet: false)'
const PER_MESSAGE = 'one script per message'
const BASELINE = '@fastify/sse + EventSource'
const COMPETITORS = [DEFAULTS, UNBOUNDED, NO_HELMET, PER_MESSAGE, BASELINE]
// The old format is not run past this: at a few thousand messages a second 1,000,000 take minutes
// per browser, and in Firefox the 65 MB document grew the content process past 2 GB and kept the
// page from answering for more than 10 minutes.
const MAX_MESSAGES = { [PER_MESSAGE]: 100000 }
// A run still going after this is reported as given up, and the benchmark goes on.
const DEADLINE_MS = 300000
const QUICK_DEADLINE_MS = 60000

/** One page absorbing n messages from a fresh server of `competitor`. */
async function measure (browser, competitor, n, { deadlineMs, inproc }) {
  const server = await startServer({ competitor, scenario: 'browser', params: { n } }, { inproc })
  let tab
  try {
    tab = await browser.open(pageUrl(server.port, competitor, n))
    const { ms, firstMs } = await waitForMessages(tab, n, { deadlineMs })
    const memory = await tab.memory()
    const page = await tab.evaluate(() => ({ count: window.bench.count, outOfOrder: window.bench.outOfOrder, liveNodes: window.bench.liveNodes() }))
    if (page.count !== n || page.outOfOrder !== 0) {
      throw new Error(`${competitor}: the page got ${page.count} of ${n} messages, ${page.outOfOrder} out of order`)
    }
    const wire = await server.call('wire')
    return { rate: n / (ms / 1000), firstMs, memory, liveNodes: page.liveNodes, bytes: wire.bytes, documents: wire.documents }
  } catch (err) {
    if (err instanceof GaveUp) return { gaveUp: err.message }
    throw err
  } finally {
    // a page that is stuck may not close in time: the browser goes at the end anyway
    if (tab !== undefined) await Promise.race([tab.close().catch(() => {}), sleep(30000)])
    await server.close()
  }
}

function roundsFor (n, { quick, rounds }) {
  if (rounds !== undefined) return rounds
  if (quick) return 1
  return n >= 1000000 ? 1 : 3
}

function runs (competitor, n) {
  return n <= (MAX_MESSAGES[competitor] ?? Infinity)
}

async function runBrowser (name, sizes, options) {
  const browser = await launch(name)
  if (browser.skipped !== undefined) {
    log(`  ${browser.skipped}`)
    return browser.skipped
  }
  const deadlineMs = options.quick ? QUICK_DEADLINE_MS : DEADLINE_MS
  const results = {} // results[n][competitor] = [run, ...]
  try {
    for (const n of sizes) {
      results[n] = Object.fromEntries(COMPETITORS.map(c => [c, []]))
      const rounds = roundsFor(n, options)
      for (let round = 0; round < rounds; round++) {
        for (const competitor of orderFor(COMPETITORS, round).filter(c => runs(c, n))) {
          const result = await measure(browser, competitor, n, { deadlineMs, inproc: options.inproc })
          results[n][competitor].push(result)
          log(`  ${browser.title} ${fmtInt(n)} round ${round + 1}/${rounds} ${competitor}: ` + (result.gaveUp ?? `${fmtInt(result.rate)} msg/s` +
            (result.memory === undefined ? '' : `, heap ${fmtBytes(result.memory.heap)}, ${result.memory.nodes} nodes`)))
        }
      }
    }
  } finally {
    await browser.close()
  }
  return report(browser, sizes, results, options)
}

function report (browser, sizes, results, options) {
  // Medians over the runs that finished; undefined when none did (or the competitor did not run).
  const med = (n, c, read) => {
    const done = results[n][c].filter(r => r.gaveUp === undefined)
    return done.length === 0 ? undefined : median(done.map(read))
  }
  const rate = (n, c) => med(n, c, r => r.rate)
  const heap = (n, c) => browser.heap ? med(n, c, r => r.memory.heap) : undefined
  const nodes = (n, c) => browser.heap ? med(n, c, r => r.memory.nodes) : undefined
  const perMessage = (n, c) => med(n, c, r => r.bytes / n)
  const ratio = (a, b) => a === undefined || b === undefined ? undefined : a / b
  const show = (value, format) => value === undefined ? '–' : format(value)
  const rows = []
  for (const n of sizes) {
    for (const c of COMPETITORS) {
      if (!runs(c, n)) {
        rows.push([fmtInt(n), c, 'not run (see below)', ...Array(8).fill('–')])
        continue
      }
      const gaveUp = results[n][c].find(r => r.gaveUp !== undefined)?.gaveUp
      rows.push([
        fmtInt(n),
        c,
        show(rate(n, c), fmtInt) + (gaveUp === undefined ? '' : ` (a run ${gaveUp})`),
        show(ratio(rate(n, c), rate(n, BASELINE)), x => `${fmt(x)}x`),
        show(med(n, c, r => r.firstMs), x => fmt(x, 0)),
        browser.heap ? show(heap(n, c), fmtBytes) : 'n/a',
        browser.heap ? show(nodes(n, c), fmtInt) : 'n/a',
        browser.heap ? show(med(n, c, r => r.memory.documents), fmtInt) : 'n/a',
        show(med(n, c, r => r.liveNodes), fmtInt),
        show(med(n, c, r => r.documents), fmtInt),
        show(perMessage(n, c), fmt)
      ])
    }
  }
  const rounds = [...new Set(sizes.map(n => roundsFor(n, options)))]
  const lines = [
    `### Browser: ${browser.title} (headless), messages absorbed by the page, median of ${rounds.join(' / ')} round(s)`,
    '',
    table(['messages', 'competitor', 'msg/s', `vs ${BASELINE}`, 'first message, ms', 'JS heap after GC',
      'DOM nodes after GC', 'documents after GC', 'live DOM nodes', 'stream requests', 'bytes/msg on the wire'], rows),
    '',
    'msg/s: in the page, from opening the stream to the n-th message handled (first message: to the first). ' +
      (browser.heap
        ? 'JS heap, DOM nodes and documents: CDP `Performance.getMetrics` after `HeapProfiler.collectGarbage`: the ' +
          'renderer\'s main V8 heap (the page and its same-origin comet iframe share it) and Blink\'s instance ' +
          'counters for the whole renderer process (every frame, detached nodes awaiting GC included), one renderer per run. '
        : 'JS heap and the GC-based counts are not available: WebDriver BiDi has neither heap metrics nor a forced GC. ') +
      'Live DOM nodes: counted in the page and its frames\' documents. Stream requests: documents the client opened ' +
      '(1 + rotations). Bytes: written on the stream\'s sockets (headers, chunk framing, padding, scripts) per message. ' +
      `${PER_MESSAGE} runs up to ${fmtInt(MAX_MESSAGES[PER_MESSAGE])} messages only: at a few thousand a second more takes minutes, and in Firefox 1,000,000 made the content process pass 2 GB and stop answering.`
  ]
  lines.push('', targets(browser, sizes, { rate, heap, nodes, perMessage, ratio }))
  return lines.join('\n')
}

function targets (browser, sizes, { rate, heap, nodes, perMessage, ratio }) {
  const met = (ok) => ok ? 'MET' : 'MISSED'
  const show = (x, suffix = 'x') => x === undefined ? 'n/a' : `${fmt(x)}${suffix}`
  const out = []
  // Chromium: >= 5x EventSource; Firefox: ahead of it
  const speed = sizes.map(n => {
    const r = ratio(rate(n, DEFAULTS), rate(n, BASELINE))
    return `${fmtInt(n)}: ${show(r)} ${r === undefined ? '' : met(browser.heap ? r >= 5 : r > 1)}`
  })
  out.push(`- ${DEFAULTS} (plugin defaults) ${browser.heap ? '>= 5x' : 'ahead of'} ${BASELINE} msg/s: ${speed.join(' | ')}`)
  const first = sizes[0]
  const last = sizes[sizes.length - 1]
  if (browser.heap && last !== first) {
    for (const c of [DEFAULTS, UNBOUNDED]) {
      const growth = ratio(heap(last, c), heap(first, c))
      const nodeGrowth = ratio(nodes(last, c), nodes(first, c))
      if (growth === undefined || nodeGrowth === undefined) {
        out.push(`- ${c}: JS heap and DOM nodes: n/a (a run did not finish)`)
        continue
      }
      out.push(`- ${c}: JS heap after ${fmtInt(last)} <= 2x after ${fmtInt(first)}: ${show(growth)} ${met(growth <= 2)}; ` +
        `DOM nodes bounded (<= 2x): ${fmtInt(nodes(first, c))} -> ${fmtInt(nodes(last, c))} ${met(nodeGrowth <= 2)}`)
    }
  } else if (!browser.heap) {
    out.push('- JS heap and DOM nodes after GC: not measurable in this browser (see above)')
  }
  const bytes = ratio(perMessage(last, DEFAULTS), perMessage(last, NO_HELMET))
  out.push(`- bytes/message with helmet <= 1.1x without (${fmtInt(last)} messages, default rotation): ` +
    `${show(perMessage(last, DEFAULTS), '')} / ${show(perMessage(last, NO_HELMET), '')} = ${show(bytes)} ${met(bytes <= 1.1)}`)
  return `Targets:\n\n${out.join('\n')}`
}

async function run (options) {
  const sizes = options.quick ? [2000] : [10000, 100000, 1000000]
  const parts = []
  for (const name of ['chromium', 'firefox']) parts.push(await runBrowser(name, sizes, options))
  return parts.join('\n\n')
}

module.exports = { name: 'browser', run, COMPETITORS }
