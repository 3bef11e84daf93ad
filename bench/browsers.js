'use strict'

// The browsers of the browser benchmarks, behind one small interface: Debian's Chromium under
// playwright-core (the Chrome DevTools Protocol gives the renderer's heap and DOM counters) and
// Debian's Firefox ESR under puppeteer-core over WebDriver BiDi (no heap or GC there). Never a
// downloaded browser: a missing one is reported in one line and its part of the benchmark skipped.

const fs = require('node:fs')
const { setTimeout: sleep } = require('node:timers/promises')

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

const BROWSERS = {
  chromium: {
    title: 'Chromium',
    path: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    install: 'apt-get install chromium',
    launch: launchChromium
  },
  firefox: {
    title: 'Firefox ESR',
    path: process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr',
    install: 'apt-get install firefox-esr',
    launch: launchFirefox
  }
}

/**
 * Launches a browser by name, or resolves { skipped } (a line saying how to install it) when its
 * executable is missing. A browser that is there but fails to start is an error.
 */
async function launch (name) {
  const spec = BROWSERS[name]
  if (!fs.existsSync(spec.path)) {
    return { skipped: `${spec.title}: skipped, no browser at ${spec.path} (\`${spec.install}\`, or set ${name === 'chromium' ? 'CHROMIUM_PATH' : 'FIREFOX_PATH'})` }
  }
  return spec.launch(spec)
}

async function launchChromium (spec) {
  const { chromium } = require('playwright-core')
  const browser = await chromium.launch({ executablePath: spec.path, args: CHROMIUM_ARGS })
  const browserCdp = await browser.newBrowserCDPSession()
  return {
    title: `${spec.title} ${browser.version()}`,
    heap: true,
    async open (url) {
      const context = await browser.newContext() // a fresh renderer process per page
      return chromiumTab(context, url, () => context.close())
    },
    /** A fresh context whose pages are tabs of one browser profile: they share BroadcastChannels. */
    async context () {
      const context = await browser.newContext()
      return { open: (url) => chromiumTab(context, url, async () => {}), close: () => context.close() }
    },
    close: () => browser.close()
  }

  /** A page of `context` at `url`; `close` is what closing the tab does. */
  async function chromiumTab (context, url, close) {
    const page = await context.newPage()
    const cdp = await context.newCDPSession(page)
    await page.goto(url)
    return {
      evaluate: (fn, arg) => page.evaluate(fn, arg),
      /**
       * The renderer after a forced GC (two, so what the first freed is finalized): the main
       * thread's V8 heap, which a same-origin iframe shares with its page, and Blink's
       * process-wide instance counters (DOM nodes, documents), which count the frames' too.
       * With `purge`, after a simulated critical memory pressure.
       */
      async memory ({ purge = false } = {}) {
        // a critical memory-pressure signal: Chromium drops its caches and returns free pages
        if (purge) await cdp.send('Memory.simulatePressureNotification', { level: 'critical' })
        await cdp.send('HeapProfiler.collectGarbage')
        await cdp.send('HeapProfiler.collectGarbage')
        await cdp.send('Performance.enable')
        const { metrics } = await cdp.send('Performance.getMetrics')
        const value = Object.fromEntries(metrics.map(m => [m.name, m.value]))
        return { heap: value.JSHeapUsedSize, nodes: value.Nodes, documents: value.Documents }
      },
      rendererRss: () => chromiumRendererRss(browserCdp),
      close
    }
  }
}

async function launchFirefox (spec) {
  const puppeteer = require('puppeteer-core')
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: spec.path,
    headless: true,
    protocolTimeout: 600000 // the long runs poll, but a slow page must not time out a call
  })
  const pid = browser.process()?.pid
  return {
    title: `${spec.title} ${(await browser.version()).replace(/^firefox\//, '')}`,
    heap: false,
    async open (url) {
      const context = await browser.createBrowserContext()
      const page = await context.newPage()
      await page.goto(url)
      return {
        evaluate: (fn, arg) => page.evaluate(fn, arg),
        memory: async () => undefined, // no heap metrics, no forced GC, no memory pressure over WebDriver BiDi
        rendererRss: async () => pid === undefined ? undefined : busiestDescendantRss(pid),
        close: () => context.close()
      }
    },
    close: () => browser.close()
  }
}

// ---------------------------------------------------------------------------------------------
// Renderer process memory (Linux /proc), for the long runs: the whole process, not only the JS
// heap, so what a long document costs outside V8 (parser, resource buffers) shows too.

/** RSS of Chromium's busiest renderer: after a long stream, the page's (others are spare or idle). */
async function chromiumRendererRss (browserCdp) {
  const { processInfo } = await browserCdp.send('SystemInfo.getProcessInfo')
  const renderers = processInfo.filter(p => p.type === 'renderer').sort((a, b) => b.cpuTime - a.cpuTime)
  return renderers.length === 0 ? undefined : rssOf(renderers[0].id)
}

/** RSS of the descendant of `pid` that used the most CPU: Firefox's content process of the page. */
function busiestDescendantRss (pid) {
  let best
  for (const child of descendants(pid)) {
    const cpu = cpuTicks(child)
    if (cpu !== undefined && (best === undefined || cpu > best.cpu)) best = { pid: child, cpu }
  }
  return best === undefined ? undefined : rssOf(best.pid)
}

function descendants (pid) {
  const children = new Map()
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    const ppid = parentOf(Number(entry))
    if (ppid === undefined) continue
    if (!children.has(ppid)) children.set(ppid, [])
    children.get(ppid).push(Number(entry))
  }
  const out = []
  const queue = [pid]
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()) ?? []) {
      out.push(child)
      queue.push(child)
    }
  }
  return out
}

/** Fields of /proc/PID/stat after the command name (which may hold spaces and parentheses). */
function statFields (pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  } catch {
    return undefined // gone meanwhile
  }
}

function parentOf (pid) {
  const fields = statFields(pid)
  return fields === undefined ? undefined : Number(fields[1])
}

function cpuTicks (pid) {
  const fields = statFields(pid)
  return fields === undefined ? undefined : Number(fields[11]) + Number(fields[12]) // utime + stime
}

function rssOf (pid) {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match === null ? undefined : Number(match[1]) * 1024
  } catch {
    return undefined
  }
}

// ---------------------------------------------------------------------------------------------

const TIMED_OUT = Symbol('timed out')

/** A run that took longer than its deadline: the page was still at `count`. */
class GaveUp extends Error {
  constructor (count, seconds) {
    super(`gave up after ${seconds} s at ${count} messages`)
    this.count = count
    this.seconds = seconds
  }
}

/** The page's counters, or TIMED_OUT when the page does not answer within `ms`. */
async function readBench (tab, ms) {
  const read = tab.evaluate(() => {
    const b = window.bench
    return b === undefined ? undefined : { count: b.count, ms: b.ms, firstMs: b.firstMs, firstAt: b.firstAt, doneAt: b.doneAt, outOfOrder: b.outOfOrder, rotations: b.rotations, rotationMs: b.rotationMs }
  })
  if (ms === Infinity) return read
  const timer = new AbortController()
  try {
    return await Promise.race([read, sleep(Math.max(0, ms), TIMED_OUT, { signal: timer.signal })])
  } finally {
    timer.abort()
  }
}

/**
 * Polls the page's window.bench until it has counted `n` messages; throws when the count stops
 * moving for `stallMs` (a lost message, a stream that never started), and GaveUp past `deadlineMs`
 * (a page too busy to answer counts as still running). `onProgress(bench)` runs at each poll (the
 * long runs sample memory there).
 */
async function waitForMessages (tab, n, { stallMs = 30000, pollMs = 250, deadlineMs = Infinity, onProgress } = {}) {
  const deadline = Date.now() + deadlineMs
  let last = -1
  let lastMoved = Date.now()
  for (;;) {
    const bench = await readBench(tab, deadline - Date.now())
    if (bench === TIMED_OUT) throw new GaveUp(Math.max(last, 0), Math.round(deadlineMs / 1000))
    const count = bench?.count ?? 0
    if (bench !== undefined && bench.ms !== undefined && count >= n) return bench
    if (onProgress !== undefined && bench !== undefined) await onProgress(bench)
    if (count !== last) {
      last = count
      lastMoved = Date.now()
    } else if (Date.now() - lastMoved > stallMs) {
      throw new Error(`the page stalled at ${count} of ${n} messages for ${stallMs / 1000} s`)
    }
    if (Date.now() > deadline) throw new GaveUp(count, Math.round(deadlineMs / 1000))
    await sleep(pollMs)
  }
}

module.exports = { launch, waitForMessages, GaveUp, BROWSERS }
