// The browser client's logic (client/comet-client.js): reconnects, backoff, resume and close, run
// in a VM context with a fake window, timers and Math.random, so every delay is known. The same
// client in Chromium, against a real server, is test/browser/client.test.ts.
import t from 'tap'
import type FastifyCometClient from '../client/comet-client.js'
import { fakeBrowser, recorder } from './fake-browser.js'

t.test('a classic script defines window.FastifyComet; CommonJS gets module.exports', async t => {
  const { window } = fakeBrowser()
  t.type(window.FastifyComet.connect, 'function')
  const module = { exports: {} }
  const cjs = fakeBrowser({ module })
  t.equal(cjs.window.FastifyComet, undefined, 'no global under CommonJS')
  t.type((module.exports as typeof FastifyCometClient).connect, 'function')
})

t.test('connect() checks its arguments', async t => {
  const { window, frames } = fakeBrowser()
  const onMessage = (): void => {}
  const connect = (url: unknown, options: unknown) => () => window.FastifyComet.connect(url as string, options as FastifyCometClient.ConnectOptions)
  t.throws(connect('', { onMessage }), { name: 'TypeError' })
  t.throws(connect(42, { onMessage }), { name: 'TypeError' })
  t.throws(connect('/events', {}), { name: 'TypeError' }, 'onMessage is required')
  t.throws(connect('/events', undefined), { name: 'TypeError' })
  for (const callback of ['parent.cometMessage', 'a-b', '', '1a', 'a b', 42]) {
    t.throws(connect('/events', { onMessage, callback }), { name: 'TypeError' }, `callback ${JSON.stringify(callback)}`)
  }
  t.throws(connect('/events', { onMessage, callback: 'alreadyThere' }), /already defined/, 'never overwrites a global')
  t.throws(connect('/events', { onMessage, onOpen: 'x' }), { name: 'TypeError' })
  t.throws(connect('/events', { onMessage, onClose: {} }), { name: 'TypeError' })
  for (const minDelay of [0, -1, NaN, Infinity, '5']) {
    t.throws(connect('/events', { onMessage, minDelay }), { name: 'RangeError' }, `minDelay ${String(minDelay)}`)
  }
  t.throws(connect('/events', { onMessage, minDelay: 100, maxDelay: 50 }), { name: 'RangeError' })
  for (const connectTimeout of [0, -1, NaN, Infinity, '5']) {
    t.throws(connect('/events', { onMessage, connectTimeout }), { name: 'RangeError' }, `connectTimeout ${String(connectTimeout)}`)
  }
  t.throws(connect('/events', { onMessage, lastEventId: 7 }), { name: 'TypeError' })
  t.equal(frames().length, 0, 'nothing was opened')
  t.equal(window.cometMessage, undefined, 'no global was defined')
})

t.test('the frame opens after the page has loaded, hidden', async t => {
  const browser = fakeBrowser({ readyState: 'loading' })
  browser.window.FastifyComet.connect('/events', { onMessage () {} })
  t.equal(browser.frames().length, 0, 'not before load')
  browser.window.dispatch('load')
  const frame = browser.frame()
  t.match(frame, { hidden: true, src: '/events', attributes: { 'aria-hidden': 'true' } })
  browser.window.dispatch('load')
  t.equal(browser.frames().length, 1, 'load opens it once')
})

t.test('close() before load: nothing opens', async t => {
  const browser = fakeBrowser({ readyState: 'interactive' })
  const stream = browser.window.FastifyComet.connect('/events', { onMessage () {} })
  stream.close()
  browser.window.dispatch('load')
  t.equal(browser.frames().length, 0)
  t.equal(browser.timers.size, 0)
})

t.test('messages, then a reconnect that resumes from the last id', async t => {
  const browser = fakeBrowser({ random: 0.5 })
  const { events, ...handlers } = recorder()
  const stream = browser.window.FastifyComet.connect('/events?room=a%20b#top', { callback: 'onTick', ...handlers })
  const first = browser.frame()
  t.equal(first.src, '/events?room=a%20b#top', 'the URL as given')
  browser.deliver({ n: 1 }, 'a b&c=#', 'onTick')
  browser.deliver({ n: 2 }, undefined, 'onTick') // a message without id keeps the last one
  t.equal(stream.lastEventId, 'a b&c=#')
  first.dispatch('load') // the comet document ended
  t.equal(first.parentNode, null, 'the finished frame is removed')
  t.equal(browser.frames().length, 0)
  t.equal(browser.runTimer(), 250, 'random(0, minDelay) after a connection that delivered')
  t.equal(browser.frame().src, '/events?room=a%20b&lastEventId=a%20b%26c%3D%23', 'resumes after the last id')
  browser.deliver({ n: 3 }, '3', 'onTick')
  t.same(events, [
    'open',
    ['message', { n: 1 }, 'a b&c=#'],
    ['message', { n: 2 }, undefined],
    ['close', { reason: 'ended', messages: 2, attempt: 0, delay: 250, transport: 'stream' }],
    'open',
    ['message', { n: 3 }, '3']
  ])
})

t.test('lastEventId is appended to any URL', async t => {
  const cases: Array<[string, string]> = [
    ['/events', '/events?lastEventId=7'],
    ['/events?', '/events?lastEventId=7'],
    ['/events?a=1&', '/events?a=1&lastEventId=7'],
    ['/events?a=1', '/events?a=1&lastEventId=7'],
    ['https://example.com/e#x?y', 'https://example.com/e?lastEventId=7']
  ]
  for (const [url, expected] of cases) {
    const browser = fakeBrowser()
    browser.window.FastifyComet.connect(url, { onMessage () {}, lastEventId: '7' })
    t.equal(browser.frame().src, expected, url)
  }
})

t.test('capped exponential backoff with full jitter, reset by a rotation or a healthy connection only', async t => {
  const browser = fakeBrowser({ random: 0.999 })
  const { events, ...handlers } = recorder()
  browser.window.FastifyComet.connect('/events', { ...handlers, minDelay: 100, maxDelay: 3000 })
  const delays = []
  for (let i = 0; i < 8; i++) {
    if (i === 4) browser.deliver('snapshot') // a message alone does not reset the backoff
    browser.frame().dispatch('load') // ended early: a failing server
    delays.push(browser.runTimer())
  }
  t.same(delays, [99, 199, 399, 799, 1598, 2997, 2997, 2997], 'doubling up to maxDelay')
  const control = (browser.window.cometMessage as unknown as { cometControl: (type: string, detail: unknown) => void }).cometControl
  control('reconnect', { delay: 0 }) // the server rotated the document
  browser.frame().dispatch('load')
  t.equal(browser.runTimer(), 0, 'a rotation reconnects at once')
  t.match(events.at(-1), ['close', { reason: 'rotated', attempt: 0, delay: 0 }])
  browser.frame().dispatch('load')
  t.equal(browser.runTimer(), 99, 'and resets the backoff')
  control('reconnect', { delay: 'backoff' }) // shutdown or overflow
  browser.frame().dispatch('load')
  t.equal(browser.runTimer(), 199, 'a later reconnect keeps the backoff')
  browser.state.now += 10000
  browser.frame().dispatch('load')
  t.equal(browser.runTimer(), 99, 'a connection open for 10 s was healthy: the backoff starts over')
  browser.state.random = 0
  browser.frame().dispatch('error')
  t.equal(browser.runTimer(), 0, 'full jitter: from 0')
  t.match(events.at(-1), ['close', { reason: 'error', attempt: 1, messages: 0 }])
})

t.test('the initial about:blank load is not the end of the stream', async t => {
  const browser = fakeBrowser()
  browser.window.FastifyComet.connect('/events', { onMessage () {} })
  const frame = browser.frame()
  frame.contentDocument = { URL: 'about:blank', currentScript: null }
  frame.dispatch('load')
  t.equal(browser.frames().length, 1, 'still connected')
  t.same(browser.delays(), [3000], 'only the watchdog waits')
  frame.contentDocument = { URL: 'http://localhost/events', currentScript: null }
  frame.dispatch('load')
  t.equal(browser.frames().length, 0)
  t.equal(browser.timers.size, 1, 'reconnect pending')
})

t.test('close() stops everything', async t => {
  const browser = fakeBrowser()
  const { events, ...handlers } = recorder()
  const stream = browser.window.FastifyComet.connect('/events', handlers)
  const receive = browser.window.cometMessage as (message: unknown) => void
  browser.deliver(1)
  stream.close()
  t.equal(stream.closed, true)
  t.equal(browser.frames().length, 0, 'frame removed')
  t.notOk('cometMessage' in browser.window, 'global removed')
  receive(2) // a script that was already running
  t.same(events, ['open', ['message', 1, undefined], ['close', { reason: 'closed', messages: 1, attempt: 0, delay: undefined, transport: 'stream' }]])
  stream.close()
  t.equal(events.length, 3, 'close() twice is harmless')
  // The name is free again.
  browser.window.FastifyComet.connect('/events', { onMessage () {} })
  t.equal(browser.frames().length, 1)
})

t.test('close() while waiting to reconnect cancels the reconnect', async t => {
  const browser = fakeBrowser()
  const { events, ...handlers } = recorder()
  const stream = browser.window.FastifyComet.connect('/events', handlers)
  browser.frame().dispatch('load')
  t.equal(browser.timers.size, 1)
  stream.close()
  t.equal(browser.timers.size, 0, 'timer cleared')
  t.equal(browser.frames().length, 0)
  t.same(events, [['close', { reason: 'ended', messages: 0, attempt: 0, delay: 250, transport: 'stream' }]], 'no second onClose')
})

t.test('a throwing handler is reported and the stream goes on', async t => {
  const browser = fakeBrowser()
  const err = new Error('app bug')
  const stream = browser.window.FastifyComet.connect('/events', {
    onMessage () { throw err },
    onOpen () { throw err }
  })
  t.doesNotThrow(() => browser.deliver('x', '1'), 'nothing thrown into the comet script')
  t.same(browser.reported, [err, err])
  t.equal(stream.lastEventId, '1')
  // Without reportError, the error is thrown from a timer, where the page's error handlers see it.
  delete browser.window.reportError
  browser.deliver('y')
  t.same(browser.delays(), [3000, 0], 'the watchdog and the error\'s timer')
  t.throws(() => browser.runTimer(0), err)
})

// The watchdog: browsers fire no event on a document cut off mid-stream, nor Firefox on a frame
// whose navigation failed, so the client judges a connection by what it delivers, in time.

t.test('connectTimeout: a connection that delivers nothing is given up, and the next one resumes', async t => {
  const browser = fakeBrowser({ random: 0.5 })
  const { events, ...handlers } = recorder()
  browser.window.FastifyComet.connect('/events', { ...handlers, connectTimeout: 5000, lastEventId: '7', transport: 'stream' })
  const first = browser.frame()
  t.same(browser.delays(), [5000], 'one timer: the watchdog')
  browser.state.now = 5000
  browser.runTimer()
  t.equal(first.parentNode, null, 'the frame is removed, which aborts its request')
  t.same(events, [['close', { reason: 'timeout', messages: 0, attempt: 0, delay: 250, transport: 'stream' }]])
  t.same(browser.delays(), [250], 'the reconnect timer only')
  browser.runTimer()
  t.equal(browser.frame().src, '/events?lastEventId=7', 'a new connection, from the same id')
  t.same(browser.delays(), [5000], 'watched from its start')
})

t.test('the first wait: connectTimeout (15 s) for a stream, probeTimeout (3 s) in auto, plus the poll timeout (25 s) for a poll', async t => {
  for (const [transport, wait] of [['stream', 15000], ['auto', 3000], [undefined, 3000], ['poll', 40000]] as const) {
    const browser = fakeBrowser()
    browser.window.FastifyComet.connect('/events', { onMessage () {}, transport })
    t.same(browser.delays(), [wait], String(transport))
  }
  const browser = fakeBrowser()
  browser.window.FastifyComet.connect('/events', { onMessage () {}, connectTimeout: 1000, probeTimeout: 2000 })
  t.same(browser.delays(), [1000], 'a probe never waits longer than connectTimeout')
})

t.test('after the open control message, three heartbeat periods of silence are a lost connection', async t => {
  const browser = fakeBrowser({ random: 0.5 })
  const { events, ...handlers } = recorder()
  browser.window.FastifyComet.connect('/events', handlers)
  browser.state.now = 100
  browser.control('open', { heartbeat: 2000 })
  t.same(browser.delays(), [6000], 'the watchdog, re-armed for three periods')
  browser.state.now = 2000
  browser.control('beat', 0)
  browser.state.now = 3000
  browser.deliver('a', '1')
  browser.state.now = 6100
  browser.runTimer()
  t.same(browser.delays(), [6000 - 3100], 're-armed for three periods after the last entry, not lost')
  t.equal(events.length, 2, 'no close')
  browser.state.now = 9000
  browser.runTimer()
  t.same(events.at(-1), ['close', { reason: 'lost', messages: 1, attempt: 0, delay: 250, transport: 'stream' }], 'silent for three periods: lost')
  t.equal(browser.frames().length, 0, 'the frame is removed')
  browser.runTimer()
  t.equal(browser.frame().src, '/events?lastEventId=1', 'resumes after the last id')
})

t.test('a short heartbeat is watched over a second at least', async t => {
  const browser = fakeBrowser()
  browser.window.FastifyComet.connect('/events', { onMessage () {} })
  browser.control('open', { heartbeat: 10 })
  t.same(browser.delays(), [1000])
})

t.test('a silence longer than a timer can wait is watched in steps', async t => {
  const browser = fakeBrowser()
  const { events, ...handlers } = recorder()
  browser.window.FastifyComet.connect('/events', { ...handlers, connectTimeout: 1e12, transport: 'stream' })
  t.same(browser.delays(), [2147483647], 'connectTimeout 1e12: the longest timer, not one that fires at once')
  browser.control('open', { heartbeat: 2147483647 })
  t.same(browser.delays(), [2147483647], 'three times the longest heartbeat too')
  browser.state.now = 2147483647
  browser.runTimer()
  t.same(browser.delays(), [2147483647], 'not due yet: the next step')
  t.notMatch(events, [['close']], 'no close')
})

t.test('heartbeat 0, or none announced (an older server): only the start is watched', async t => {
  for (const announce of [{ heartbeat: 0 }, { heartbeat: 'soon' }, null, undefined]) {
    const browser = fakeBrowser()
    const { events, ...handlers } = recorder()
    browser.window.FastifyComet.connect('/events', handlers)
    if (announce !== undefined) {
      browser.control('open', announce)
      t.same(browser.delays(), [], `${JSON.stringify(announce)}: no watchdog`)
    } else {
      browser.deliver('first')
      browser.state.now = 60000
      browser.runTimer() // the connect timeout's timer, left to fire
      t.same(browser.delays(), [], 'a message without an open: no watchdog after it fired')
    }
    t.equal(browser.frames().length, 1, 'still connected')
    t.notMatch(events, [['close']], 'no close')
  }
})

t.test('a watchdog that fires late (a frozen, throttled or busy page) waits once more before its verdict', async t => {
  const browser = fakeBrowser({ random: 0.5 })
  const { events, ...handlers } = recorder()
  browser.window.FastifyComet.connect('/events', handlers)
  browser.control('open', { heartbeat: 2000 })
  browser.state.now = 60000 // due at 6000: the page did not run meanwhile
  browser.runTimer()
  t.same(browser.delays(), [1000], 'a grace of a second')
  browser.control('beat', 0) // what arrived meanwhile runs now
  browser.state.now = 61000
  browser.runTimer()
  t.same(browser.delays(), [6000 - 1000], 'alive: watched again')
  browser.state.now = 120000 // late again, with nothing delivered this time
  browser.runTimer()
  t.same(browser.delays(), [1000])
  browser.state.now = 240000 // and the grace itself is late: the verdict stands
  browser.runTimer()
  t.same(events.at(-1), ['close', { reason: 'lost', messages: 0, attempt: 0, delay: 250, transport: 'stream' }])
})

t.test('a slow handler is not silence: the entry counts once handled', async t => {
  const browser = fakeBrowser()
  const { events, ...handlers } = recorder()
  browser.window.FastifyComet.connect('/events', {
    ...handlers,
    onMessage (message, id) {
      handlers.onMessage(message, id)
      browser.state.now += 7000 // longer than the allowed silence
    }
  })
  browser.control('open', { heartbeat: 2000 })
  browser.deliver('slow')
  browser.state.now += 10
  browser.runTimer()
  t.same(browser.delays(), [6000 - 10], 'watched from the end of the handler')
  t.equal(browser.frames().length, 1, 'still connected')
  t.notMatch(events, [['close']])
})

t.test('a reset handler is not silence either; unknown control messages still count as alive', async t => {
  const browser = fakeBrowser()
  browser.window.FastifyComet.connect('/events', {
    onMessage () {},
    onReset () { browser.state.now += 7000 }
  })
  browser.control('open', { heartbeat: 2000 })
  browser.control('reset', { lastEventId: '1', id: '9' })
  browser.state.now += 10
  browser.runTimer()
  t.same(browser.delays(), [6000 - 10])
  browser.control('something-new', 'x') // at 7010
  browser.state.now = 13005 // past 7000 + 6000: lost, had the last entry not counted
  browser.runTimer()
  t.same(browser.delays(), [5], 'an unknown type counted: re-armed, not lost')
})

t.test('the end of a document, or close(), stops the watchdog', async t => {
  const browser = fakeBrowser()
  const stream = browser.window.FastifyComet.connect('/events', { onMessage () {} })
  browser.control('open', { heartbeat: 2000 })
  browser.frame().dispatch('load')
  t.same(browser.delays(), [250], 'the reconnect timer only')
  browser.runTimer()
  t.same(browser.delays(), [3000], 'the next connection is watched')
  stream.close()
  t.same(browser.delays(), [], 'no timer after close()')
})
