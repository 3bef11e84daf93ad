// The shared client's election without Web Locks (plain HTTP by host name) and its catch-up from
// a tab's own cursor, step by step: fake tabs of one origin whose BroadcastChannel messages and
// timers run when the test says. The same client in real tabs is test/browser/shared-tabs.test.ts
// and its neighbours.
import t from 'tap'
import { FakeBus, fakeBrowser, recorder, settle } from './fake-browser.js'

const CLAIM_MS = 250
const LEADER_LOST_MS = 1500

/** A fake tab whose place in the election is `random`, connected to /events. */
function tab (bus: FakeBus, random: number, options: Record<string, unknown> = {}, readyState = 'complete') {
  const browser = fakeBrowser({ bus, random, readyState })
  const { events, ...handlers } = recorder()
  const stream = browser.window.FastifyComet.connect('/events', { ...handlers, ...options })
  return { ...browser, events, stream }
}

/** The messages a tab's onMessage got. */
function messages (events: unknown[]): unknown[] {
  return events.filter(event => Array.isArray(event) && event[0] === 'message').map(event => (event as unknown[])[1])
}

/** Two tabs, the first one leading (it claimed first and had the smaller number). */
async function leaderAndFollower (bus: FakeBus) {
  const leader = tab(bus, 0.2)
  const follower = tab(bus, 0.7)
  await bus.deliver() // the claims cross: 0.7 yields to 0.2
  leader.runTimer(CLAIM_MS)
  await bus.deliver()
  return { leader, follower }
}

t.test('claims that cross: the smaller number leads, the other follows and gets every event in order', async t => {
  const bus = new FakeBus()
  const { leader, follower } = await leaderAndFollower(bus)
  t.equal(leader.frames().length, 1, 'the leader holds the frame')
  t.equal(follower.frames().length, 0, 'the follower holds none')
  t.same(follower.delays(), [LEADER_LOST_MS], 'and waits for a silent leader')
  leader.deliver('a', '1')
  leader.control('beat', 0)
  leader.deliver('b', '2')
  await bus.deliver()
  t.same(leader.events, ['open', ['message', 'a', '1'], ['message', 'b', '2']])
  t.same(follower.events, leader.events, 'the follower: the same events, in the same order')
  t.equal(follower.stream.lastEventId, '2')
  t.equal(bus.posted.filter(message => message.t === 'ev').length, 1, 'one post for the comet script\'s entries')
})

t.test('a leader that never heard its follower (which spoke before it existed) still posts to it', async t => {
  const bus = new FakeBus()
  const first = tab(bus, 0.6) // claims to no one
  const second = tab(bus, 0.2) // claims; the first yields to the smaller number, silently
  await bus.deliver()
  second.runTimer(CLAIM_MS)
  second.deliver('a', '1')
  await bus.deliver()
  t.equal(second.frames().length, 1)
  t.same(first.events, ['open', ['message', 'a', '1']])
})

t.test('two leaders that hear each other: the larger number steps down, and drops what both delivered', async t => {
  const bus = new FakeBus()
  const a = tab(bus, 0.2)
  const b = tab(bus, 0.7)
  // Neither heard the other's claim in time: two leaders, two frames.
  a.runTimer(CLAIM_MS)
  b.runTimer(CLAIM_MS)
  t.equal(a.frames().length + b.frames().length, 2)
  a.deliver('x', '1')
  b.deliver('x', '1')
  b.deliver('y', '2')
  await bus.deliver()
  t.equal(a.frames().length, 1, 'the smaller number leads on')
  t.equal(b.frames().length, 0, 'the larger let its frame go')
  a.deliver('y', '2')
  a.deliver('z', '3')
  await bus.deliver()
  t.same(messages(b.events), ['x', 'y', 'z'], 'the tab that stepped down: each message once')
  t.same(messages(a.events), ['x', 'y', 'z'])
})

t.test('a leader that vanishes without a word is replaced after 2 s of silence; a live one answers a claim at once', async t => {
  const bus = new FakeBus()
  const { leader, follower } = await leaderAndFollower(bus)
  leader.deliver('a', '1')
  await bus.deliver()
  // A follower whose timer ran (a throttled leader beat late): the leader answers its claim.
  follower.runTimer(LEADER_LOST_MS)
  await bus.deliver()
  follower.runTimer(LEADER_LOST_MS) // the claim's wait was replaced by the wait for a silent leader
  await bus.deliver()
  t.equal(follower.frames().length, 0, 'still a follower')
  t.same(follower.delays(), [LEADER_LOST_MS])
  // The leader's tab crashes.
  bus.cut(leader.window)
  follower.runTimer(LEADER_LOST_MS)
  await bus.deliver()
  follower.runTimer(CLAIM_MS)
  t.equal(follower.frames().length, 1, 'the follower leads')
  t.equal(follower.frame().src, '/events?lastEventId=1', 'from the newest id it has seen')
})

t.test('a leader that closes says so: a follower takes over after one claim', async t => {
  const bus = new FakeBus()
  const { leader, follower } = await leaderAndFollower(bus)
  leader.deliver('a', '1')
  await bus.deliver()
  leader.stream.close()
  await bus.deliver()
  t.same(follower.delays(), [CLAIM_MS], 'it claims at once')
  follower.runTimer(CLAIM_MS)
  t.equal(follower.frame().src, '/events?lastEventId=1')
  t.match(leader.events.at(-1), ['close', { reason: 'closed' }])
  t.notMatch(follower.events, [['close']], 'a handover is no connection lost for the others')
})

t.test('a tab rendered at the shared stream\'s position follows at once, with no connection of its own', async t => {
  const bus = new FakeBus()
  const { leader } = await leaderAndFollower(bus)
  leader.deliver('a', '1')
  leader.deliver('b', '2')
  await bus.deliver()
  const late = tab(bus, 0.9, { lastEventId: '2' })
  await bus.deliver()
  t.equal(late.frames().length, 0, 'no catch-up connection')
  t.ok(bus.posted.some(message => message.t === 'at' && message.cursor === '2'), 'the leader said where it was')
  leader.deliver('c', '3')
  await bus.deliver()
  t.same(messages(late.events), ['c'], 'then the shared stream')
})

t.test('a tab rendered behind the shared stream catches up on a connection of its own, then takes what it kept', async t => {
  const bus = new FakeBus()
  const { leader } = await leaderAndFollower(bus)
  for (const id of ['1', '2', '3']) leader.deliver('m' + id, id)
  await bus.deliver()
  const late = tab(bus, 0.9, { lastEventId: '1' })
  await bus.deliver()
  t.equal(late.frame().src, '/events?lastEventId=1', 'its own connection, from its cursor')
  leader.deliver('m4', '4') // while it catches up: kept aside
  await bus.deliver()
  t.same(messages(late.events), [], 'nothing out of order')
  late.deliver('m2', '2')
  late.deliver('m3', '3') // where the leader was when it answered
  t.same(messages(late.events), ['m2', 'm3', 'm4'], 'what it missed, then what it kept')
  t.equal(late.frames().length, 0, 'and its own connection is gone')
  leader.deliver('m5', '5')
  await bus.deliver()
  t.same(messages(late.events), ['m2', 'm3', 'm4', 'm5'], 'then the shared stream, each message once')
  await settle()
})

t.test('two tabs rendered at the same cursor open together: one leads, the other asks it where it is and follows', async t => {
  const bus = new FakeBus()
  const first = tab(bus, 0.2, { lastEventId: '2' }, 'loading')
  const second = tab(bus, 0.9, { lastEventId: '2' }) // claims before the first has loaded
  first.window.dispatch('load') // and the first claims after
  await bus.deliver() // the second yields to the smaller claim, and asks a tab that does not lead yet
  t.same(bus.posted.map(message => message.t), ['claim', 'claim', 'where'])
  first.runTimer(CLAIM_MS)
  await bus.deliver() // the new leader says it is there: asked again, it answers
  t.equal(first.frame().src, '/events?lastEventId=2', 'the leader streams from the cursor')
  t.equal(second.frames().length, 0, 'the other holds no connection')
  first.deliver('c', '3')
  await bus.deliver()
  t.same(messages(second.events), ['c'])
})

t.test('with no answer from the leader within 500 ms: its own connection until it delivers a shared message, or a heartbeat for a key with none', async t => {
  const bus = new FakeBus()
  const { leader } = await leaderAndFollower(bus)
  for (const id of ['1', '2', '3']) leader.deliver('m' + id, id)
  await bus.deliver()
  bus.lost.add('where') // a leader that never hears the question
  const late = tab(bus, 0.9, { lastEventId: '1' })
  await bus.deliver()
  t.equal(late.frames().length, 0, 'it waits for the answer')
  late.runTimer(500)
  t.equal(late.frame().src, '/events?lastEventId=1', 'then catches up on a connection of its own')
  leader.deliver('m4', '4')
  await bus.deliver()
  late.deliver('m2', '2')
  late.deliver('m3', '3')
  t.equal(late.frames().length, 1, 'still catching up: where the shared stream was is unknown')
  late.deliver('m4', '4') // delivered by both
  t.equal(late.frames().length, 0, 'caught up')
  leader.deliver('m5', '5')
  await bus.deliver()
  t.same(messages(late.events), ['m2', 'm3', 'm4', 'm5'], 'each message once, in order')

  // A quiet stream: nothing shared to meet; the server's heartbeat says the replay is over.
  const quiet = tab(bus, 0.95, { lastEventId: '5' })
  await bus.deliver()
  quiet.runTimer(500)
  quiet.control('open', { heartbeat: 20000 })
  t.equal(quiet.frames().length, 1)
  quiet.control('beat', 0)
  t.equal(quiet.frames().length, 0, 'a heartbeat ends it')
  leader.deliver('m6', '6')
  await bus.deliver()
  t.same(messages(quiet.events), ['m6'])
})

t.test('a document that may not use Web Locks holds the election without them; one without a BroadcastChannel streams alone', async t => {
  const bus = new FakeBus()
  const refused = fakeBrowser({ bus, random: 0.5 })
  refused.window.navigator = { locks: { request: async () => { throw new Error('SecurityError') } } }
  refused.window.AbortController = AbortController
  refused.window.FastifyComet.connect('/events', { onMessage () {} })
  await settle()
  t.same(bus.posted.map(message => message.t), ['claim'], 'it claims')
  refused.runTimer(CLAIM_MS)
  t.equal(refused.frames().length, 1, 'and leads')

  const opaque = fakeBrowser({ bus, random: 0.5 })
  opaque.window.BroadcastChannel = class { constructor () { throw new Error('SecurityError') } }
  opaque.window.FastifyComet.connect('/events', { onMessage () {} })
  t.equal(opaque.frames().length, 1, 'a connection of its own, at once')
})
