'use strict'

// 7. Browser tabs that share one stream (issue 17), in headless Chromium: how many messages a
// follower tab absorbs against the leader tab that holds the stream and hands every batch on
// through a BroadcastChannel, and how many a tab alone absorbs (what sharing costs with no one to
// share with) against EventSource and, with COMET_DIST_BASELINE, another build's client.
//
// Two tabs: one browser context (its pages share BroadcastChannels and Web Locks, on 127.0.0.1),
// the first tab opened leads once its stream is open on the server, then the second opens; the
// server publishes only once both are there (the page's messages carry no ids, so a follower
// cannot catch up on what came before). Leader msg/s = n / (its first -> its n-th message);
// follower msg/s = n / (the leader's first message -> the follower's n-th), on the clock the tabs
// share (performance.timeOrigin + now): the follower's rate includes how far behind it ends.
// A tab alone: msg/s as in bench/browser.js (the page opens the stream -> the n-th message).

const { setTimeout: sleep } = require('node:timers/promises')
const { startServer, median, orderFor, table, fmt, fmtInt, log } = require('./common.js')
const { pageUrl } = require('./browser-servers.js')
const { launch, waitForMessages, GaveUp } = require('./browsers.js')
const { COMET_DIST_BASELINE, BASELINE_BUILD } = require('./servers.js')

const COMET = 'fastify-comet'
const EVENTSOURCE = '@fastify/sse + EventSource'
const TWO_TABS = 'fastify-comet, two tabs'
const DEADLINE_MS = 300000
const QUICK_DEADLINE_MS = 60000
// Goal of issue 17: a follower keeps up with its leader.
const FOLLOWER_GOAL = 0.8

function alone () {
  return COMET_DIST_BASELINE === undefined ? [COMET, EVENTSOURCE] : [COMET, COMET + BASELINE_BUILD, EVENTSOURCE]
}

/** Fails a run whose page did not get each of the n messages once, in order. */
async function check (tab, competitor, n) {
  const page = await tab.evaluate(() => ({ count: window.bench.count, outOfOrder: window.bench.outOfOrder }))
  if (page.count !== n || page.outOfOrder !== 0) {
    throw new Error(`${competitor}: a page got ${page.count} of ${n} messages, ${page.outOfOrder} out of order`)
  }
}

/** One tab alone absorbing n messages from a fresh server of `competitor`. */
async function measureAlone (browser, competitor, n, { deadlineMs, inproc }) {
  const server = await startServer({ competitor, scenario: 'browser', params: { n } }, { inproc })
  let tab
  try {
    tab = await browser.open(pageUrl(server.port, competitor, n))
    const { ms } = await waitForMessages(tab, n, { deadlineMs })
    await check(tab, competitor, n)
    return { rate: n / (ms / 1000) }
  } catch (err) {
    if (err instanceof GaveUp) return { gaveUp: err.message }
    throw err
  } finally {
    if (tab !== undefined) await Promise.race([tab.close().catch(() => {}), sleep(30000)])
    await server.close()
  }
}

/** Two tabs of one context sharing a stream of n messages: the leader's and the follower's rates. */
async function measureTwoTabs (browser, n, { deadlineMs, inproc }) {
  const server = await startServer({ competitor: COMET, scenario: 'browser', params: { n, gated: true } }, { inproc })
  const context = await browser.context()
  try {
    const url = pageUrl(server.port, COMET, n)
    const leader = await context.open(url)
    const end = Date.now() + 30000
    while ((await server.call('wire')).documents === 0) {
      if (Date.now() > end) throw new Error(`${TWO_TABS}: the first tab opened no stream`)
      await sleep(20)
    }
    const follower = await context.open(url)
    await follower.evaluate(() => 0) // after the page's load handlers: the client has joined
    await server.call('go')
    const [l, f] = await Promise.all([waitForMessages(leader, n, { deadlineMs }), waitForMessages(follower, n, { deadlineMs })])
    await check(leader, TWO_TABS, n)
    await check(follower, TWO_TABS, n)
    const frames = await Promise.all([leader, follower].map(tab => tab.evaluate(() => document.querySelectorAll('iframe').length)))
    if (frames[0] !== 1 || frames[1] !== 0) throw new Error(`${TWO_TABS}: frames in the tabs ${frames}, not 1 and 0`)
    const { documents } = await server.call('wire')
    return {
      leader: n / ((l.doneAt - l.firstAt) / 1000),
      follower: n / ((f.doneAt - l.firstAt) / 1000),
      behindMs: f.doneAt - l.doneAt,
      documents
    }
  } catch (err) {
    if (err instanceof GaveUp) return { gaveUp: err.message }
    throw err
  } finally {
    await Promise.race([context.close().catch(() => {}), sleep(30000)])
    await server.close()
  }
}

async function run (options) {
  const browser = await launch('chromium')
  if (browser.skipped !== undefined) {
    log(`  ${browser.skipped}`)
    return browser.skipped
  }
  const n = options.quick ? 2000 : 100000
  const rounds = options.rounds ?? (options.quick ? 1 : 3)
  const deadlineMs = options.quick ? QUICK_DEADLINE_MS : DEADLINE_MS
  const measured = { [TWO_TABS]: [] }
  for (const c of alone()) measured[c] = []
  try {
    for (let round = 0; round < rounds; round++) {
      for (const c of orderFor([...alone(), TWO_TABS], round)) {
        const result = c === TWO_TABS
          ? await measureTwoTabs(browser, n, { deadlineMs, inproc: options.inproc })
          : await measureAlone(browser, c, n, { deadlineMs, inproc: options.inproc })
        measured[c].push(result)
        const shown = result.gaveUp ?? (c === TWO_TABS
          ? `leader ${fmtInt(result.leader)} msg/s, follower ${fmtInt(result.follower)} msg/s (${fmt(result.follower / result.leader)}x), ${fmt(result.behindMs, 0)} ms behind`
          : `${fmtInt(result.rate)} msg/s`)
        log(`  ${browser.title} ${fmtInt(n)} round ${round + 1}/${rounds} ${c}: ${shown}`)
      }
    }
  } finally {
    await browser.close()
  }
  return report(browser, n, rounds, measured)
}

function report (browser, n, rounds, measured) {
  const done = (c) => measured[c].filter(r => r.gaveUp === undefined)
  const med = (c, read) => done(c).length === 0 ? undefined : median(done(c).map(read))
  const show = (value, format) => value === undefined ? '–' : format(value)
  const gaveUp = (c) => measured[c].find(r => r.gaveUp !== undefined)?.gaveUp
  const note = (c) => gaveUp(c) === undefined ? '' : ` (a run ${gaveUp(c)})`
  const eventSource = med(EVENTSOURCE, r => r.rate)
  const aloneRows = alone().map(c => {
    const rate = med(c, r => r.rate)
    return [c, show(rate, fmtInt) + note(c), show(rate === undefined || eventSource === undefined ? undefined : rate / eventSource, x => `${fmt(x)}x`)]
  })
  const ratio = med(TWO_TABS, r => r.follower / r.leader)
  const twoRows = [[
    show(med(TWO_TABS, r => r.leader), fmtInt) + note(TWO_TABS),
    show(med(TWO_TABS, r => r.follower), fmtInt),
    show(ratio, x => `${fmt(x)}x`),
    show(med(TWO_TABS, r => r.behindMs), x => fmt(x, 0)),
    show(med(TWO_TABS, r => r.documents), fmtInt)
  ]]
  const lines = [
    `### Browser tabs sharing one stream: ${browser.title} (headless), ${fmtInt(n)} messages, median of ${rounds} round(s)`,
    '',
    'A tab alone (the page opens the stream -> the n-th message handled):',
    '',
    table(['competitor', 'msg/s', `vs ${EVENTSOURCE}`], aloneRows),
    '',
    'Two tabs of one browser context sharing the stream (plugin defaults; leader: its first -> n-th message; follower: the leader\'s first -> its own n-th):',
    '',
    table(['leader msg/s', 'follower msg/s', 'follower ÷ leader (median of the rounds\' ratios)', 'follower ends behind, ms', 'stream requests'], twoRows),
    '',
    'Targets:',
    '',
    `- follower >= ${FOLLOWER_GOAL}x leader: ${show(ratio, x => `${fmt(x)}x ${x >= FOLLOWER_GOAL ? 'MET' : 'MISSED'}`)}`
  ]
  if (COMET_DIST_BASELINE !== undefined) {
    // Round by round: the two builds ran one after the other, under the same load.
    const ratios = []
    measured[COMET].forEach((now, round) => {
      const before = measured[COMET + BASELINE_BUILD][round]
      if (now.rate !== undefined && before.rate !== undefined) ratios.push(now.rate / before.rate)
    })
    const shown = ratios.length === 0 ? 'n/a' : `${fmt(median(ratios))}x (rounds: ${ratios.map(x => fmt(x)).join(', ')})`
    lines.push(`- a tab alone, this build ÷ baseline build, median of the rounds' ratios (for information): ${shown}`)
  }
  return lines.join('\n')
}

module.exports = { name: 'browser-shared', run }
