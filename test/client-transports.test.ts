// The browser client's transports, step by step in a fake window: a stream held back by a
// buffering hop (nothing delivered within probeTimeout) gives way to polls, which follow one
// another at once, resume exactly, and try a stream again now and then. The same client behind
// real buffering hops, in Chromium and Firefox, is test/browser/buffering-hops.test.ts.
import t from 'tap'
import { FakeBus, fakeBrowser, recorder } from './fake-browser.js'

const PROBE_MS = 3000
const CONNECT_MS = 15000
const RETRY_MS = 60000

function client (options: Record<string, unknown> = {}) {
  const browser = fakeBrowser({ random: 0.5 })
  const { events, ...handlers } = recorder()
  const stream = browser.window.FastifyComet.connect('/events', { ...handlers, ...options })
  return { ...browser, events, stream }
}

/** What the route's poll does: its open entry, what it has, then the end of the document. */
function poll (browser: ReturnType<typeof client>, messages: Array<[string, string?]>, reconnect: unknown = { delay: 0 }, wait = 25000) {
  browser.control('open', wait === 0 ? { heartbeat: 0 } : { heartbeat: 0, poll: wait })
  for (const [message, id] of messages) browser.deliver(message, id)
  browser.control('reconnect', reconnect)
  browser.frame().dispatch('load')
}

/** Gives up the stream as held back after probeTimeout, at `now`; the quick poll that follows gets through. */
function heldBack (browser: ReturnType<typeof client>, now = PROBE_MS) {
  browser.state.now = now
  browser.runTimer(PROBE_MS)
  browser.runTimer(0)
  poll(browser, [], { delay: 0 }, 0)
  browser.runTimer(0)
}

t.test('a stream that delivers nothing within probeTimeout gives way to a poll, at once', async t => {
  const browser = client()
  t.equal(browser.stream.transport, 'stream')
  const first = browser.frame()
  t.equal(first.src, '/events', 'a stream first')
  t.same(browser.delays(), [PROBE_MS], 'watched for probeTimeout, not connectTimeout')
  browser.state.now = PROBE_MS
  browser.runTimer()
  t.equal(first.parentNode, null, 'the held-back stream is dropped, which aborts its request')
  t.same(browser.events, [['close', { reason: 'buffered', messages: 0, attempt: 0, delay: 0, transport: 'stream' }]])
  t.equal(browser.stream.transport, 'poll')
  browser.state.now = PROBE_MS + 5
  browser.runTimer(0)
  t.equal(browser.frame().src, '/events?transport=poll&wait=0&since=4005',
    'a poll answered at once: do polls get through? For what was published since that stream opened: 3,005 ms ago, plus a second')
  t.same(browser.delays(), [CONNECT_MS], 'watched for connectTimeout')
  browser.state.now = PROBE_MS + 50
  poll(browser, [], { delay: 0 }, 0)
  t.same(browser.events.length, 1, 'they do: no onClose, polling goes on')
  t.same(browser.delays(), [0], 'at once')
  browser.runTimer(0)
  t.equal(browser.frame().src, '/events?transport=poll&since=4050',
    'a poll that waits; since still counts from that stream\'s start: the quick poll had no time for a replay')
  t.same(browser.delays(), [25000 + CONNECT_MS], 'watched for the poll timeout plus connectTimeout')
})

t.test('a stream given up whose quick poll does not get through either: no hop, a server that does not answer', async t => {
  const browser = client({ minDelay: 100 })
  browser.state.now = PROBE_MS
  browser.runTimer(PROBE_MS) // Firefox reports no refused connection: silence, as behind a hop
  browser.runTimer(0)
  browser.state.now += CONNECT_MS
  browser.runTimer(CONNECT_MS)
  t.match(browser.events.at(-1), ['close', { reason: 'timeout', transport: 'poll', attempt: 0, delay: 50 }], 'a timeout, with the backoff')
  t.equal(browser.stream.transport, 'stream', 'streams again')
  browser.runTimer(50)
  t.equal(browser.frame().src, '/events?since=19000', 'a stream, for what was published since the first opened')
  t.same(browser.delays(), [PROBE_MS], 'probed')
})

t.test('polls follow one another at once, resume from the last id, and count as one connection', async t => {
  const browser = client({ minDelay: 100 })
  heldBack(browser)
  poll(browser, [['a', '1'], ['b', '2']])
  t.same(browser.delays(), [0], 'the next poll at once')
  browser.runTimer(0)
  t.equal(browser.frame().src, '/events?transport=poll&lastEventId=2', 'from the last id, no since: the id says it all')
  poll(browser, [])
  browser.runTimer(0)
  poll(browser, [['c', '3']])
  browser.runTimer(0)
  t.same(browser.events.slice(1), ['open', ['message', 'a', '1'], ['message', 'b', '2'], ['message', 'c', '3']],
    'one onOpen, no onClose between polls')
  browser.frame().dispatch('error')
  t.match(browser.events.at(-1), ['close', { reason: 'error', messages: 3, transport: 'poll' }],
    'a failed poll ends the connection: its messages are those of all its polls')
  t.equal(browser.stream.transport, 'poll', 'and the next one is a poll too, after the backoff')
  browser.runTimer()
  t.match(browser.frame().src, /^\/events\?transport=poll&lastEventId=3$/)
})

t.test('the poll timeout the server announces is watched, plus connectTimeout; a poll that never ends is given up', async t => {
  const browser = client({ connectTimeout: 1000 })
  browser.state.now = 1000
  browser.runTimer(1000) // connectTimeout is shorter than probeTimeout: the probe waits that long
  browser.runTimer(0)
  poll(browser, [], { delay: 0 }, 0)
  browser.runTimer(0)
  browser.state.now = 2000
  browser.control('open', { heartbeat: 0, poll: 5000 })
  t.same(browser.delays(), [6000], 'watched for 5 s + 1 s from the open entry, not for heartbeats')
  browser.deliver('a', '1')
  browser.state.now = 8500
  browser.runTimer()
  t.match(browser.events.at(-1), ['close', { reason: 'lost', transport: 'poll', messages: 1 }])
  browser.runTimer()
  t.same(browser.delays(), [6000], 'the next poll is watched with what the server announced')
})

t.test('a poll that the server ends with a later reconnect (shutdown, a slow client) backs off', async t => {
  const browser = client({ minDelay: 100 })
  heldBack(browser)
  poll(browser, [], { delay: 'backoff' })
  t.match(browser.events.at(-1), ['close', { reason: 'ended', transport: 'poll', delay: 50 }])
})

t.test('while polling, a stream is tried again after a minute, and streams once it delivers', async t => {
  const browser = client()
  heldBack(browser)
  poll(browser, [['a', '1']])
  browser.runTimer(0)
  browser.state.now = PROBE_MS + RETRY_MS
  poll(browser, [['b', '2']])
  t.match(browser.events.at(-1), ['close', { reason: 'upgrade', transport: 'poll', messages: 2, delay: 0 }],
    'the polls end as a connection')
  t.equal(browser.stream.transport, 'stream')
  browser.runTimer(0)
  t.equal(browser.frame().src, '/events?lastEventId=2', 'a stream, from the last id')
  t.same(browser.delays(), [PROBE_MS], 'probed again')
  browser.control('open', { heartbeat: 20000 })
  t.same(browser.delays(), [60000], 'it delivers: watched by its heartbeats')
  t.equal(browser.stream.transport, 'stream')
  browser.deliver('c', '3')
  t.same(browser.events.slice(-2), ['open', ['message', 'c', '3']])
})

t.test('retry delays double while streams stay held back, and start over once one delivers', async t => {
  const browser = client()
  const retries: number[] = []
  let heldSince = 0
  heldBack(browser)
  heldSince = PROBE_MS
  for (let i = 0; i < 5; i++) {
    // Polls, each a second apart, until the client tries a stream.
    for (;;) {
      browser.state.now += 1000
      poll(browser, [])
      if (browser.stream.transport === 'stream') break
      browser.runTimer(0)
    }
    retries.push(browser.state.now - heldSince)
    browser.runTimer(0)
    heldBack(browser, browser.state.now + PROBE_MS)
    heldSince = browser.state.now
  }
  t.same(retries, [60000, 120000, 240000, 480000, 600000], 'doubling, capped at ten minutes')
  for (;;) {
    browser.state.now += 1000
    poll(browser, [])
    if (browser.stream.transport === 'stream') break
    browser.runTimer(0)
  }
  browser.runTimer(0)
  browser.control('open', { heartbeat: 20000 }) // this one gets through
  browser.frame().dispatch('load') // and ends: a restarted server
  browser.runTimer()
  heldBack(browser, browser.state.now + PROBE_MS) // then a hop holds streams back again
  const start = browser.state.now
  for (;;) {
    browser.state.now += 1000
    poll(browser, [])
    if (browser.stream.transport === 'stream') break
    browser.runTimer(0)
  }
  t.equal(browser.state.now - start, RETRY_MS, 'a minute again')
})

t.test("transport: 'poll' only polls; transport: 'stream' never polls", async t => {
  const polls = client({ transport: 'poll' })
  t.equal(polls.stream.transport, 'poll')
  t.equal(polls.frame().src, '/events?transport=poll', 'a poll from the start, live: nothing heard before')
  polls.state.now = 10 * RETRY_MS
  poll(polls, [['a', '1']])
  polls.runTimer(0)
  t.equal(polls.frame().src, '/events?transport=poll&lastEventId=1', 'still polling, an hour on')
  t.equal(polls.stream.transport, 'poll')

  const streams = client({ transport: 'stream', connectTimeout: 5000 })
  streams.state.now = 5000
  streams.runTimer()
  t.match(streams.events.at(-1), ['close', { reason: 'timeout', transport: 'stream', delay: 250 }], 'silence is a timeout, with the backoff')
  streams.runTimer()
  t.equal(streams.frame().src, '/events?since=6000', 'a stream again, for what was published since the first opened')
  t.equal(streams.stream.transport, 'stream')
})

t.test('?since= covers what the page has no position for, from the last entry it heard', async t => {
  const browser = client({ transport: 'stream' })
  browser.state.now = 100
  browser.control('open', { heartbeat: 20000 })
  browser.state.now = 400
  browser.deliver('tick') // no id: a source without history
  browser.state.now = 900
  browser.frame().dispatch('load')
  browser.state.now = 1150
  browser.runTimer()
  t.equal(browser.frame().src, '/events?since=1750', '1,150 - 400 ms, plus a second')
  browser.deliver('x', '7')
  browser.frame().dispatch('load')
  browser.runTimer()
  t.equal(browser.frame().src, '/events?lastEventId=7', 'a single source with a position: that is all it needs')
})

t.test('connect() checks transport and probeTimeout', async t => {
  const { window } = fakeBrowser()
  const onMessage = (): void => {}
  for (const transport of ['websocket', '', null, 1]) {
    t.throws(() => window.FastifyComet.connect('/e', { onMessage, transport: transport as 'poll' }),
      { name: 'TypeError', message: "FastifyComet.connect: transport must be 'auto', 'stream' or 'poll'" })
  }
  for (const probeTimeout of [0, -1, Infinity, '3000']) {
    t.throws(() => window.FastifyComet.connect('/e', { onMessage, probeTimeout: probeTimeout as number }),
      { name: 'RangeError', message: 'FastifyComet.connect: probeTimeout must be a number of milliseconds, more than 0' })
  }
})

t.test("a follower shows the leader's transport, and takes over polling where the leader polled", async t => {
  const bus = new FakeBus()
  const leader = fakeBrowser({ bus, random: 0.2 })
  const follower = fakeBrowser({ bus, random: 0.7 })
  const followed = recorder()
  const lead = leader.window.FastifyComet.connect('/events', { onMessage () {} })
  const stream = follower.window.FastifyComet.connect('/events', { onMessage: followed.onMessage })
  await bus.deliver()
  leader.runTimer(250) // its claim stands
  await bus.deliver()
  leader.state.now = PROBE_MS
  leader.runTimer(PROBE_MS)
  await bus.deliver()
  t.equal(lead.transport, 'poll')
  leader.runTimer(0)
  leader.control('open', { heartbeat: 0, poll: 25000 })
  leader.deliver('a', '1')
  await bus.deliver()
  t.equal(stream.transport, 'poll', 'the follower is told with the events')
  t.same(followed.events, [['message', 'a', '1']])
  lead.close()
  await bus.deliver()
  follower.runTimer(250) // the follower claims the lead, and nobody objects
  t.equal(follower.frame().src, '/events?transport=poll&lastEventId=1', 'it polls at once, from its cursor')
})

t.test('a stream whose document has begun is not held back: a busy browser gets until connectTimeout', async t => {
  const browser = client()
  const frame = browser.frame()
  frame.contentDocument = { URL: 'http://localhost/events', currentScript: null } // the response is in
  browser.state.now = PROBE_MS
  browser.runTimer(PROBE_MS)
  t.equal(browser.frames().length, 1, 'still streaming')
  t.same(browser.delays(), [CONNECT_MS - PROBE_MS], 'watched until connectTimeout')
  browser.control('open', { heartbeat: 20000 }) // its first script ran at last
  t.equal(browser.stream.transport, 'stream')
  t.same(browser.events, [])

  const held = client()
  held.frame().contentDocument = { URL: 'http://localhost/events', currentScript: null } // a head, no body
  held.state.now = PROBE_MS
  held.runTimer(PROBE_MS)
  held.state.now = CONNECT_MS
  held.runTimer(CONNECT_MS - PROBE_MS)
  t.match(held.events, [['close', { reason: 'buffered', transport: 'stream', delay: 0 }]], 'a hop that passes the head on and holds the body: noticed at connectTimeout')
  t.equal(held.stream.transport, 'poll')
})

// Found by review: a tab catching up from its own cursor on polls, a forced transport in a
// follower, the back/forward cache before any disconnect, and close() between two polls.

function sharedTab (bus: FakeBus, random: number, options: Record<string, unknown> = {}) {
  const browser = fakeBrowser({ bus, random })
  const { events, ...handlers } = recorder()
  const stream = browser.window.FastifyComet.connect('/events', { ...handlers, ...options })
  return { ...browser, events, stream }
}

/** A leader polling (forced), with m1 and m2 delivered, and a tab rendered at m1 whose question goes unanswered. */
async function pollingLeaderAndLateTab (lateOptions: Record<string, unknown>) {
  const bus = new FakeBus()
  const leader = sharedTab(bus, 0.2, { transport: 'poll' })
  await bus.deliver()
  leader.runTimer(250)
  await bus.deliver()
  leader.control('open', { heartbeat: 0, poll: 25000 })
  leader.deliver('m1', '1')
  leader.deliver('m2', '2')
  await bus.deliver()
  bus.lost.add('where')
  const late = sharedTab(bus, 0.9, { lastEventId: '1', ...lateOptions })
  await bus.deliver()
  leader.control('reconnect', { delay: 0 })
  leader.frame().dispatch('load')
  leader.runTimer(0)
  leader.control('open', { heartbeat: 0, poll: 25000 })
  await bus.deliver()
  late.runTimer(500) // no answer: it catches up on a connection of its own
  return { bus, leader, late }
}

t.test('a tab catching up on polls is caught up when a poll ends with nothing, as on a heartbeat', async t => {
  const { late } = await pollingLeaderAndLateTab({})
  t.equal(late.stream.transport, 'poll', "the leader's transport")
  t.match(late.frame().src, /^\/events\?transport=poll&lastEventId=1/, 'its own connection polls too, from its cursor')
  late.control('open', { heartbeat: 0, poll: 25000 })
  late.deliver('m2', '2')
  late.control('reconnect', { delay: 0 })
  late.frame().dispatch('load')
  late.runTimer(0)
  late.control('open', { heartbeat: 0, poll: 25000 })
  late.control('reconnect', { delay: 0 }) // nothing more: the replay is over
  late.frame().dispatch('load')
  t.equal(late.frames().length, 0, 'its own connection is gone')
  t.same(late.delays().filter(delay => delay === 0), [], 'and no next poll')
  t.same(late.events.filter(event => Array.isArray(event) && event[0] === 'message'), [['message', 'm2', '2']])
})

t.test("a follower forced to 'stream' catches up on a stream, whatever its leader does", async t => {
  const { late } = await pollingLeaderAndLateTab({ transport: 'stream' })
  t.equal(late.frame().src, '/events?lastEventId=1')
})

t.test('back from the back/forward cache with no id yet: ?since= covers the time away', async t => {
  const browser = fakeBrowser({ random: 0.5 })
  browser.window.FastifyComet.connect('/events', { onMessage () {}, shared: false })
  browser.control('open', { heartbeat: 20000 })
  browser.state.now = 400
  browser.deliver('x') // no id
  browser.state.now = 10000
  browser.window.dispatch('pagehide', { persisted: true })
  browser.state.now = 70000
  browser.window.dispatch('pageshow', { persisted: true })
  t.equal(browser.frame().src, '/events?since=70600', 'from the last entry heard, plus a second')
})

t.test('close() between two polls closes what their onOpen opened', async t => {
  const browser = client({ transport: 'poll', shared: false })
  poll(browser, [['a', '1']])
  browser.stream.close()
  t.match(browser.events, ['open', ['message', 'a', '1'], ['close', { reason: 'closed', messages: 1, transport: 'poll' }]])
})
