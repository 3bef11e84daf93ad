'use strict'

// 6. Browser: how many messages a page absorbs, end to end, in headless Chromium and Firefox ESR.
// Each run: a fresh server process (bench/browser-servers.js) and a fresh browser context; the
// page opens the stream after 'load' (the shipped client, or EventSource) and counts messages in
// its handler. msg/s = messages / (page opens the stream -> the n-th message handled), clocked in
// the page. Then the renderer is measured after a forced GC (Chromium, through CDP), the live DOM
// counted in the page and its frames, and the bytes the server wrote on the stream's sockets.

const { startServer, median, orderFor, table, fmt, fmtInt, fmtBytes, log } = require('./common.js')
const { pageUrl } = require('./browser-servers.js')
const { launch, waitForMessages } = require('./browsers.js')

const DEFAULTS = 'fastify-comet'
const UNBOUNDED = 'fastify-comet (maxBytes: Infinity)'
const NO_HELMET = 'fastify-comet (helmet: false)'
const BASELINE = '@fastify/sse + EventSource'
const COMPETITORS = [DEFAULTS, UNBOUNDED, NO_HELMET, 'one script per message', BASELINE]

/** One page absorbing n messages from a fresh server of `competitor`. */
async function measure (browser, competitor, n) {
  const server = await startServer({ competitor, scenario: 'browser', params: { n } })
  let tab
  try {
    tab = await browser.open(pageUrl(server.port, competitor, n))
    const { ms } = await waitForMessages(tab, n)
    const memory = await tab.memory()
    const page = await tab.evaluate(() => ({ count: window.bench.count, outOfOrder: window.bench.outOfOrder, liveNodes: window.bench.liveNodes() }))
    if (page.count !== n || page.outOfOrder !== 0) {
      throw new Error(`${competitor}: the page got ${page.count} of ${n} messages, ${page.outOfOrder} out of order`)
    }
    const wire = await server.call('wire')
    return { rate: n / (ms / 1000), memory, liveNodes: page.liveNodes, bytes: wire.bytes, documents: wire.documents }
  } finally {
    await tab?.close()
    await server.close()
  }
}

function roundsFor (n, { quick, rounds }) {
  if (rounds !== undefined) return rounds
  if (quick) return 1
  return n >= 1000000 ? 1 : 3
}

async function runBrowser (name, sizes, options) {
  const browser = await launch(name)
  if (browser.skipped !== undefined) {
    log(`  ${browser.skipped}`)
    return `${browser.skipped}\n`
  }
  const results = {} // results[n][competitor] = [run, ...]
  try {
    for (const n of sizes) {
      results[n] = Object.fromEntries(COMPETITORS.map(c => [c, []]))
      const rounds = roundsFor(n, options)
      for (let round = 0; round < rounds; round++) {
        for (const competitor of orderFor(COMPETITORS, round)) {
          const result = await measure(browser, competitor, n)
          results[n][competitor].push(result)
          log(`  ${browser.title} ${fmtInt(n)} round ${round + 1}/${rounds} ${competitor}: ${fmtInt(result.rate)} msg/s` +
            (result.memory === undefined ? '' : `, heap ${fmtBytes(result.memory.heap)}, ${result.memory.nodes} nodes`))
        }
      }
    }
  } finally {
    await browser.close()
  }
  return report(browser, sizes, results, options)
}

function report (browser, sizes, results, options) {
  const med = (n, c, read) => median(results[n][c].map(read))
  const rate = (n, c) => med(n, c, r => r.rate)
  const heap = (n, c) => browser.heap ? med(n, c, r => r.memory.heap) : undefined
  const nodes = (n, c) => browser.heap ? med(n, c, r => r.memory.nodes) : undefined
  const perMessage = (n, c) => med(n, c, r => r.bytes) / n
  const rows = []
  for (const n of sizes) {
    for (const c of COMPETITORS) {
      rows.push([
        fmtInt(n),
        c,
        fmtInt(rate(n, c)),
        `${fmt(rate(n, c) / rate(n, BASELINE))}x`,
        browser.heap ? fmtBytes(heap(n, c)) : 'n/a',
        browser.heap ? fmtInt(nodes(n, c)) : 'n/a',
        browser.heap ? fmtInt(med(n, c, r => r.memory.documents)) : 'n/a',
        fmtInt(med(n, c, r => r.liveNodes)),
        fmtInt(med(n, c, r => r.documents)),
        fmt(perMessage(n, c))
      ])
    }
  }
  const rounds = sizes.map(n => roundsFor(n, options))
  const lines = [
    `### Browser: ${browser.title} (headless), messages absorbed by the page, median of ${[...new Set(rounds)].join(' / ')} round(s)`,
    '',
    table(['messages', 'competitor', 'msg/s', `vs ${BASELINE}`, 'JS heap after GC', 'DOM nodes after GC',
      'documents after GC', 'live DOM nodes', 'stream requests', 'bytes/msg on the wire'], rows),
    '',
    'msg/s: in the page, from opening the stream to the n-th message handled. ' +
      (browser.heap
        ? 'JS heap, DOM nodes and documents: CDP `Performance.getMetrics` after `HeapProfiler.collectGarbage`: the ' +
          'renderer\'s main V8 heap (the page and its same-origin comet iframe share it) and Blink\'s instance ' +
          'counters for the whole renderer process (every frame, detached nodes awaiting GC included), one renderer per run. '
        : 'JS heap and the GC-based counts are not available: WebDriver BiDi has neither heap metrics nor a forced GC. ') +
      'Live DOM nodes: counted in the page and its frames\' documents. Stream requests: documents the client opened ' +
      '(1 + rotations). Bytes: written on the stream\'s sockets (headers, chunk framing, padding, scripts) per message.'
  ]
  lines.push('', targets(browser, sizes, { rate, heap, nodes, perMessage }))
  return lines.join('\n')
}

function targets (browser, sizes, { rate, heap, nodes, perMessage }) {
  const met = (ok) => ok ? 'MET' : 'MISSED'
  const out = []
  const factor = browser.heap ? 5 : 1 // Chromium: >= 5x EventSource; Firefox: ahead of it
  const speed = sizes.map(n => {
    const ratio = rate(n, DEFAULTS) / rate(n, BASELINE)
    return `${fmtInt(n)}: ${fmt(ratio)}x ${met(browser.heap ? ratio >= factor : ratio > 1)}`
  })
  out.push(`- ${DEFAULTS} (plugin defaults) ${browser.heap ? '>= 5x' : 'ahead of'} ${BASELINE} msg/s: ${speed.join(' | ')}`)
  const first = sizes[0]
  const last = sizes[sizes.length - 1]
  if (browser.heap && last !== first) {
    for (const c of [DEFAULTS, UNBOUNDED]) {
      const growth = heap(last, c) / heap(first, c)
      const nodeGrowth = nodes(last, c) / nodes(first, c)
      out.push(`- ${c}: JS heap after ${fmtInt(last)} <= 2x after ${fmtInt(first)}: ${fmt(growth)}x ${met(growth <= 2)}; ` +
        `DOM nodes bounded (<= 2x): ${fmtInt(nodes(first, c))} -> ${fmtInt(nodes(last, c))} ${met(nodeGrowth <= 2)}`)
    }
  } else if (!browser.heap) {
    out.push('- JS heap and DOM nodes after GC: not measurable in this browser (see above)')
  }
  const bytes = perMessage(last, DEFAULTS) / perMessage(last, NO_HELMET)
  out.push(`- bytes/message with helmet <= 1.1x without (${fmtInt(last)} messages, default rotation): ` +
    `${fmt(perMessage(last, DEFAULTS))} / ${fmt(perMessage(last, NO_HELMET))} = ${fmt(bytes)}x ${met(bytes <= 1.1)}`)
  return `Targets:\n\n${out.join('\n')}`
}

async function run (options) {
  const sizes = options.quick ? [2000] : [10000, 100000, 1000000]
  const parts = []
  for (const name of ['chromium', 'firefox']) parts.push(await runBrowser(name, sizes, options))
  return parts.join('\n\n')
}

module.exports = { name: 'browser', run, COMPETITORS }
