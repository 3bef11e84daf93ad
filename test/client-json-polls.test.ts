// The browser client's polls where fetch() exists (every browser it supports): each poll is a
// fetch of ?transport=poll, whose JSON entries run as a comet document's scripts
// would; the first of a series asks for an answer at once (&wait=0), which says how long the
// server holds polls. Step by step in a fake window; behind real buffering hops, in Chromium and
// Firefox, see test/browser/buffering-*-falls-back-to-polling.test.ts.
import t from 'tap'
import { fakeBrowser, recorder } from './fake-browser.js'

const PROBE_MS = 3000
const CONNECT_MS = 15000

function client (options: Record<string, unknown> = {}) {
  const browser = fakeBrowser({ random: 0.5, fetch: true })
  const { events, ...handlers } = recorder()
  const stream = browser.window.FastifyComet.connect('/events', { ...handlers, ...options })
  const fetch = () => {
    const open = browser.fetches.filter(request => !request.aborted())
    if (open.length !== 1) throw new Error(`${open.length} polls under way`)
    return open[0]
  }
  return { ...browser, events, stream, fetch }
}

/** Gives up the stream as held back, at `now`: the poll that follows is a quick fetch. */
function heldBack (browser: ReturnType<typeof client>, now = PROBE_MS) {
  browser.state.now = now
  browser.runTimer(PROBE_MS)
  browser.runTimer(0)
}

t.test('behind a buffering hop the client polls with fetch(), not frames: a quick one first, which says how long polls wait', async t => {
  const browser = client()
  const stream = browser.frame()
  heldBack(browser)
  t.equal(stream.parentNode, null, 'the held-back stream is gone')
  t.same(browser.frames(), [], 'no frame for polls')
  const quick = browser.fetch()
  t.equal(quick.url, '/events?transport=poll&wait=0&since=4000')
  t.same(quick.headers, { 'Comet-Format': 'json' }, 'asked for as JSON, with the header no page of another site can send')
  t.same(browser.delays(), [CONNECT_MS], 'the quick poll is watched for connectTimeout')
  browser.state.now = PROBE_MS + 20
  await quick.answer([2, 'open', { heartbeat: 0, poll: 40000 }])
  t.same(browser.events, [['close', { reason: 'buffered', messages: 0, attempt: 0, delay: 0, transport: 'stream' }]],
    'polls get through: no onClose for it')
  t.equal(browser.stream.transport, 'poll')
  browser.runTimer(0)
  const waiting = browser.fetch()
  t.equal(waiting.url, '/events?transport=poll&since=4020', 'the next one waits; since counts from that stream\'s start')
  t.same(browser.delays(), [40000 + CONNECT_MS], 'watched for the poll timeout the server announced, plus connectTimeout')
})

t.test('the entries of a JSON poll reach the page as a document\'s would, and the next poll resumes from the last id at once', async t => {
  const browser = client()
  heldBack(browser)
  await browser.fetch().answer([2, 'open', { heartbeat: 0, poll: 25000 }])
  browser.runTimer(0)
  await browser.fetch().answer([1, 'a', '1', 0, 'no id', 1, 'b', '2'])
  t.same(browser.events.slice(1), ['open', ['message', 'a', '1'], ['message', 'no id', undefined], ['message', 'b', '2']])
  t.same(browser.delays(), [0], 'an end with nothing more to say: again at once')
  browser.runTimer(0)
  t.equal(browser.fetch().url, '/events?transport=poll&lastEventId=2', 'from the last id')
  await browser.fetch().answer([])
  browser.runTimer(0)
  await browser.fetch().answer([1, 'c', '3'])
  t.same(browser.events.slice(5), [['message', 'c', '3']], 'polls that follow one another are one connection: one onOpen')
  t.equal(browser.stream.lastEventId, '3')
})

t.test('keys in a JSON poll: the messages after a key entry are that key\'s, and the cursor keeps one id per key', async t => {
  const browser = client({ transport: 'poll' })
  t.equal(browser.fetch().url, '/events?transport=poll&wait=0', 'a forced poll starts its series with a quick one too')
  await browser.fetch().answer([2, 'open', { heartbeat: 0, keys: ['chat', 'news'], poll: 25000 }])
  browser.runTimer(0)
  await browser.fetch().answer([3, 'chat', 1, 'hi', 'c1', 1, 'there', 'c2', 3, 'news', 1, 'headline', 'n1'])
  t.same(browser.events, ['open', ['message', 'hi', 'c1', 'chat'], ['message', 'there', 'c2', 'chat'], ['message', 'headline', 'n1', 'news']])
  t.same(browser.stream.lastEventId, { chat: 'c2', news: 'n1' })
  browser.runTimer(0)
  t.equal(browser.fetch().url, `/events?transport=poll&lastEventId=${encodeURIComponent('{"chat":"c2","news":"n1"}')}&since=1000`)
})

t.test('a JSON poll that fails, or is answered with an error, ends the connection with the backoff', async t => {
  const browser = client({ transport: 'poll', minDelay: 100 })
  await browser.fetch().answer([2, 'open', { heartbeat: 0, poll: 25000 }])
  browser.runTimer(0)
  await browser.fetch().answer({ statusCode: 503, code: 'FST_COMET_TOO_MANY_STREAMS' }, 503)
  t.match(browser.events.at(-1), ['close', { reason: 'error', transport: 'poll', attempt: 0, delay: 50 }])
  t.equal(browser.stream.transport, 'poll', 'a forced poll stays a poll')
  browser.runTimer(50)
  const next = browser.fetch()
  t.match(next.url, /&wait=0/, 'a new series: a quick poll first')
  await next.fail()
  t.match(browser.events.at(-1), ['close', { reason: 'error', attempt: 1, delay: 100 }], 'a network failure, and the backoff grows')
  browser.runTimer(100)
  await browser.fetch().answer('<html>a hop\'s error page</html>')
  t.match(browser.events.at(-1), ['close', { reason: 'error', attempt: 2 }], 'an answer that is not JSON entries')
  browser.runTimer()
  await browser.fetch().answer({ not: 'entries' })
  t.match(browser.events.at(-1), ['close', { reason: 'error', attempt: 3 }], 'JSON that is not an array of entries')
})

t.test('after a buffered stream, a quick JSON poll that fails says there is no hop: streams again, with the backoff', async t => {
  const browser = client({ minDelay: 100 })
  heldBack(browser)
  await browser.fetch().fail()
  t.match(browser.events.at(-1), ['close', { reason: 'error', transport: 'poll', delay: 50 }])
  t.equal(browser.stream.transport, 'stream')
  browser.runTimer(50)
  t.equal(browser.frames().length, 1, 'a stream, in a frame')
})

t.test('a JSON poll that asks the client to come back later is obeyed, and a silent one is given up and aborted', async t => {
  const browser = client({ transport: 'poll', minDelay: 100 })
  await browser.fetch().answer([2, 'open', { heartbeat: 0, poll: 25000 }])
  browser.runTimer(0)
  await browser.fetch().answer([2, 'reconnect', { delay: 'backoff' }])
  t.match(browser.events.at(-1), ['close', { reason: 'ended', delay: 50 }], 'a server going away: later')
  browser.runTimer(50)
  await browser.fetch().answer([2, 'open', { heartbeat: 0, poll: 25000 }])
  browser.runTimer(0)
  const silent = browser.fetch()
  browser.state.now = 25000 + CONNECT_MS
  browser.runTimer(25000 + CONNECT_MS)
  t.ok(silent.aborted(), 'its request is aborted')
  t.match(browser.events.at(-1), ['close', { reason: 'timeout', transport: 'poll' }])
})

t.test('close() aborts the poll under way, and what it brings later runs nothing', async t => {
  const browser = client({ transport: 'poll' })
  await browser.fetch().answer([2, 'open', { heartbeat: 0, poll: 25000 }])
  browser.runTimer(0)
  const last = browser.fetches.at(-1)!
  browser.stream.close()
  t.ok(last.aborted())
  await last.answer([1, 'late', '9'])
  t.same(browser.events, [['close', { reason: 'closed', messages: 0, attempt: 0, delay: undefined, transport: 'poll' }]])
  t.same(browser.delays(), [], 'nothing more')
})

t.test('after a buffered stream, a quick JSON poll answered with an error status says polls get through: polling goes on, with the backoff', async t => {
  const browser = client({ minDelay: 100 })
  heldBack(browser)
  await browser.fetch().answer({ statusCode: 503, code: 'FST_COMET_TOO_MANY_STREAMS' }, 503)
  t.match(browser.events.at(-1), ['close', { reason: 'error', transport: 'poll', delay: 50 }])
  t.equal(browser.stream.transport, 'poll', 'still polling: the server answered through the hop')
  browser.runTimer(50)
  t.match(browser.fetch().url, /^\/events\?transport=poll&wait=0/, 'a quick poll again')
})

t.test('a hop that drops the header gets a document back: the client polls with documents in frames from then on', async t => {
  const browser = client({ transport: 'poll', minDelay: 100 })
  await browser.fetch().answer('<html><body><script>…</script>', 200, 'text/html; charset=utf-8')
  t.match(browser.events.at(-1), ['close', { reason: 'error', transport: 'poll' }])
  browser.runTimer()
  t.equal(browser.fetches.length, 1, 'no new fetch')
  t.equal(browser.frame().src, '/events?transport=poll&since=1000', 'a document poll in a frame, which carries its messages in scripts')
})
