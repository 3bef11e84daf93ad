// Polling: `?transport=poll` turns the same route's forever document into a short, complete one,
// which any buffering hop passes on whole. It ends soon after it has something to deliver (what
// follows within a few milliseconds comes along), or after `pollTimeout` with nothing; it carries
// no padding and no heartbeat, and asks the client to come back at once. Sources, channels,
// multiplexed streams, ids, resets and limits behave as in streaming.
import t from 'tap'
import { build, listen, open, replayWithControl, withoutHelper } from './helpers.js'

const poll = (url: string, lastEventId?: string): string =>
  `${url}?transport=poll${lastEventId === undefined ? '' : `&lastEventId=${encodeURIComponent(lastEventId)}`}`

t.test('a poll ends as soon as it has a message, with no padding, and asks for the next poll at once', async t => {
  const { app, logs } = await build(t, { pollTimeout: 60000 })
  const room = app.comet.channel<string>({ history: 10 })
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const client = await open(poll(`${await listen(app)}/comet`))
  await client.waitFor('<html><body>')
  const id = await room.publish('hello')
  await client.ended
  const body = client.body()
  t.ok(body.startsWith('<html><body><script nonce="'), 'no padding before the document')
  t.same(replayWithControl(body, 'cb'), [['message', 'hello', id], ['control', 'reconnect', { delay: 0 }]])
  t.match(logs.find(line => line.msg === 'comet stream ended'), { reason: 'poll', messages: 1 })
  t.equal(room.size, 0, 'the poll let go of the channel')
})

t.test('a poll with nothing to deliver ends at its timeout: a document with no message', async t => {
  const { app } = await build(t, { pollTimeout: 50, heartbeat: 10 })
  app.get('/comet', (request, reply) => reply.comet(app.comet.channel(), 'cb'))
  const client = await open(poll(`${await listen(app)}/comet`))
  await client.ended
  t.same(replayWithControl(client.body(), 'cb'), [['control', 'reconnect', { delay: 0 }]], 'no heartbeat, no message')
  t.match(client.body(), '2,"open",{"heartbeat":0,"poll":50},', 'its open message promises no heartbeat, and says how long a poll may wait')
})

t.test('&wait=MS shortens a poll (wait=0: at once, to check that polls get through), never lengthens it', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  app.get('/comet', (request, reply) => reply.comet(app.comet.channel(), 'cb'))
  const url = await listen(app)
  const quick = await open(`${poll(`${url}/comet`)}&wait=0`)
  await quick.ended
  t.same(replayWithControl(quick.body(), 'cb'), [['control', 'reconnect', { delay: 0 }]], 'ended at once, with nothing')
  t.match(quick.body(), '2,"open",{"heartbeat":0,"poll":60000},', 'it announces the route\'s poll timeout all the same: the client watches the polls that follow for it')
  const short = await open(`${poll(`${url}/comet`)}&wait=30`)
  await short.ended // long before the route's minute
  t.same(replayWithControl(short.body(), 'cb'), [['control', 'reconnect', { delay: 0 }]], 'a shorter wait ends with nothing')
  for (const wait of ['90000', '-1', '1.5', 'soon', '']) {
    const { app: other } = await build(t, { pollTimeout: 40 })
    other.get('/comet', (request, reply) => reply.comet(other.comet.channel(), 'cb'))
    const client = await open(`${poll(`${await listen(other)}/comet`)}&wait=${wait}`)
    await client.ended
    t.match(client.body(), '"poll":40}', `wait=${wait}: the route's pollTimeout`)
  }
})

t.test('what follows the first message within the gathering comes along in the same poll', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  const room = app.comet.channel<number>({ history: 100 })
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const client = await open(poll(`${await listen(app)}/comet`))
  await client.waitFor('<html><body>')
  const ids = []
  for (let n = 1; n <= 5; n++) ids.push(await room.publish(n))
  await client.ended
  t.same(replayWithControl(client.body(), 'cb').slice(0, 5), ids.map((id, i) => ['message', i + 1, id]))
})

t.test('polls resume exactly where the last one stopped while a channel publishes', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  const room = app.comet.channel<number>({ history: 1000 })
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const url = `${await listen(app)}/comet`
  let lastEventId = await room.position()
  const published: string[] = []
  // Paced, so that messages keep arriving while polls come and go.
  const publisher = (async () => {
    for (let n = 0; n < 200; n++) {
      published.push(await room.publish(n))
      if (n % 4 === 0) await new Promise(resolve => setTimeout(resolve, 1))
    }
  })()
  const received: unknown[][] = []
  let polls = 0
  while (received.length < 200) {
    const client = await open(poll(url, lastEventId))
    await client.ended
    polls++
    for (const call of replayWithControl(client.body(), 'cb')) {
      if (call[0] !== 'message') continue
      received.push(call)
      lastEventId = call[2] as string
    }
  }
  await publisher
  t.same(received, published.map((id, n) => ['message', n, id]), `every message once, in order, over ${polls} polls`)
  t.ok(polls > 1, `polls came and went while it published (${polls})`)
})

t.test('a multiplexed poll: each key resumes from its own id; a source without ids is called afresh per poll', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  const room = app.comet.channel<string>({ history: 10 })
  let calls = 0
  app.get('/comet', (request, reply) => reply.comet({ room, hello: () => { calls++; return (async function * () { yield 'hi'; await new Promise(() => {}) }()) } }, 'cb'))
  const url = `${await listen(app)}/comet`
  const first = await room.publish('one')
  const second = await room.publish('two')
  const client = await open(`${url}?transport=poll&lastEventId=${encodeURIComponent(JSON.stringify({ room: first }))}`)
  await client.ended
  t.same(replayWithControl(client.body(), 'cb').filter(call => call[0] === 'message'), [['message', 'two', second, 'room'], ['message', 'hi', undefined, 'hello']])
  const again = await open(`${url}?transport=poll&lastEventId=${encodeURIComponent(JSON.stringify({ room: second }))}`)
  await again.ended
  t.same(replayWithControl(again.body(), 'cb').filter(call => call[0] === 'message'), [['message', 'hi', undefined, 'hello']])
  t.equal(calls, 2, 'the source function ran once per poll')
})

t.test('a reset is something to deliver: the poll ends with it', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  const room = app.comet.channel<string>({ history: 10 })
  const id = await room.publish('one')
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const client = await open(poll(`${await listen(app)}/comet`, 'lost'))
  await client.ended
  t.same(replayWithControl(client.body(), 'cb'), [['control', 'reset', { lastEventId: 'lost', id }], ['control', 'reconnect', { delay: 0 }]])
})

t.test('a client that leaves mid-poll releases its source at once', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  let aborted!: () => void
  const released = new Promise<void>(resolve => { aborted = resolve })
  app.get('/comet', (request, reply) => reply.comet(({ signal }) => {
    signal.addEventListener('abort', aborted)
    return (async function * () { await new Promise(() => {}) }())
  }, 'cb'))
  const client = await open(poll(`${await listen(app)}/comet`))
  await client.waitFor('<html><body>')
  client.req.destroy()
  await released
  t.pass('the signal aborted')
  t.equal(app.comet.stats().streams.endReasons['client-gone'], 1)
})

t.test('a poll counts against maxStreams like a stream', async t => {
  const { app } = await build(t, { pollTimeout: 60000, maxStreams: 1 })
  const room = app.comet.channel<string>()
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const url = `${await listen(app)}/comet`
  const held = await open(poll(url))
  await held.waitFor('<html><body>')
  const refused = await fetch(poll(url))
  t.equal(refused.status, 503)
  t.equal(refused.headers.get('retry-after'), '5')
  room.publish('x')
  await held.ended
  const next = await open(poll(url))
  await next.waitFor('<html><body>')
  t.pass('admitted again once the poll ended')
  next.req.destroy()
})

t.test('without ?transport=poll nothing changes: padding, and the stream goes on after a message', async t => {
  const { app } = await build(t, { padding: 16 })
  const room = app.comet.channel<string>()
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const url = `${await listen(app)}/comet`
  const client = await open(`${url}?transport=stream`)
  await client.waitFor('<html><body>')
  room.publish('a')
  await client.waitFor('"a"')
  room.publish('b')
  await client.waitFor('"b"')
  t.ok(client.body().startsWith(' '.repeat(16) + '<html><body>'))
  t.notMatch(withoutHelper(client.body()), /reconnect/)
  client.req.destroy()
})

t.test('pollTimeout is validated at register and per call', async t => {
  for (const pollTimeout of [0, -1, 1.5, '25000', 2147483648]) {
    await t.rejects(build(t, { pollTimeout: pollTimeout as number }), { code: 'FST_COMET_INVALID_OPTION' }, String(pollTimeout))
  }
  const { app } = await build(t)
  app.get('/comet', (request, reply) => reply.comet(['x'], { callback: 'cb', pollTimeout: 0 }))
  t.equal((await app.inject('/comet?transport=poll')).json().code, 'FST_COMET_INVALID_OPTION')
})
