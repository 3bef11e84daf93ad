// Broadcast channels: one publish reaches every subscriber, encoded once; slow subscribers are
// cut loose instead of slowing the others or growing memory.
import t from 'tap'
import { once } from 'node:events'
import type { ServerResponse } from 'node:http'
import { CometChannel } from '../lib/channel.js'
import type { CometFeed, CometSubscriber } from '../lib/feed.js'
import { build, listen, open, replay, messages, firstBlockedWrite, countWrites, type OpenStream } from './helpers.js'

t.test('publish reaches every subscriber; size follows subscriptions', async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel<{ n: number }>()
  const subscribed: Array<Promise<void>> = []
  app.get('/comet', (request, reply) => {
    const done = reply.comet(channel, 'cb')
    subscribed.push(done)
    return done
  })
  const url = await listen(app)
  const clients: OpenStream[] = []
  for (let i = 0; i < 3; i++) clients.push(await open(`${url}/comet`))
  t.equal(channel.size, 3)
  channel.publish({ n: 1 })
  channel.publish({ n: 2 })
  for (const client of clients) await client.waitFor('{"n":2}')
  for (const client of clients) t.same(messages(client.body(), 'cb'), [{ n: 1 }, { n: 2 }])

  clients[0].req.destroy()
  await subscribed[0]
  t.equal(channel.size, 2, 'a client that left is unsubscribed')

  channel.close()
  for (const client of clients.slice(1)) await client.ended
  t.pass('close() ended every subscriber cleanly')
  t.equal(channel.size, 0)
})

t.test('a message is serialized once, however many subscribers', async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel()
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  const url = await listen(app)
  const clients = await Promise.all(Array.from({ length: 5 }, () => open(`${url}/comet`)))
  let serialized = 0
  channel.publish({ toJSON: () => { serialized++; return { tick: 1 } } })
  for (const client of clients) await client.waitFor('{"tick":1}')
  t.equal(serialized, 1)
  const nonces = new Set(clients.map(client => /nonce="([^"]+)"/.exec(client.body())?.[1]))
  t.equal(nonces.size, 5, "each subscriber's script carries its own response's nonce")
  channel.close()
})

t.test('message ids go to every subscriber', async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel<{ n: number }>({ id: message => `m${message.n}` })
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  channel.publish({ n: 7 })
  channel.close()
  await client.ended
  t.same(replay(client.body(), 'cb'), [[{ n: 7 }, 'm7']])
})

t.test('an unserializable message throws at publish and reaches nobody', async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel<unknown>()
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  t.throws(() => channel.publish(10n), { code: 'FST_COMET_UNSERIALIZABLE_MESSAGE' })
  channel.publish('fine')
  channel.close()
  await client.ended
  t.same(messages(client.body(), 'cb'), ['fine'])
})

t.test('a subscriber that stops reading is ended past maxQueue; the others get everything', async t => {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const channel = app.comet.channel<string>({ maxQueue: 16 })
  const raws: ServerResponse[] = []
  const ends: Array<Promise<void>> = []
  let slowBlocked!: Promise<void>
  app.get('/comet', (request, reply) => {
    if (raws.length === 0) slowBlocked = firstBlockedWrite(reply.raw)
    raws.push(reply.raw)
    const done = reply.comet(channel, 'cb')
    ends.push(done)
    return done
  })
  const url = await listen(app)
  const slow = await open(`${url}/comet`)
  slow.res.pause()
  const fast = await open(`${url}/comet`)
  const payload = 'z'.repeat(8192)
  let published = 0
  const slowState = { ended: false }
  ends[0].then(() => { slowState.ended = true })
  // Publish at the pace a reading client keeps up with, until the slow one has been cut loose.
  while (!slowState.ended) {
    channel.publish(`${published++} ${payload}`)
    await new Promise(setImmediate)
  }
  await slowBlocked
  t.ok(published > 16, `${published} messages published before the slow subscriber was ended`)
  t.equal(channel.size, 1, 'the slow subscriber was unsubscribed')
  const warning = logs.find(line => line.level === 40 && /fell too far behind/.test(line.msg))
  t.ok(warning, 'logged at warn')
  t.equal(warning?.reqId, logs.find(line => line.msg === 'comet stream opened')?.reqId, "with the slow request's id")

  channel.publish('last')
  channel.close()
  await fast.ended
  const received = messages(fast.body(), 'cb')
  t.equal(received.length, published + 1, 'the fast subscriber missed nothing')
  t.equal(received[received.length - 1], 'last')
  slow.req.destroy()
  await once(raws[0], 'close')
})

t.test('subscribing to a closed channel ends the stream at once', async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel()
  channel.close()
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  const res = await app.inject('/comet')
  t.equal(res.statusCode, 200)
  t.same(messages(res.body, 'cb'), [])
})

t.test('a source function may return a channel; the class works outside Fastify', async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = new CometChannel<number>()
  t.equal(channel.size, 0)
  app.get('/comet', (request, reply) => reply.comet(() => channel, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  t.equal(channel.size, 1)
  channel.publish(1)
  channel.close()
  await client.ended
  t.same(messages(client.body(), 'cb'), [1])
})

t.test('invalid channel options fail with FST_COMET_INVALID_OPTION', async t => {
  t.throws(() => new CometChannel({ maxQueue: 0 }), { code: 'FST_COMET_INVALID_OPTION' })
  t.throws(() => new CometChannel({ maxQueue: 1.5 }), { code: 'FST_COMET_INVALID_OPTION' })
  t.throws(() => new CometChannel({ id: 'n' as never }), { code: 'FST_COMET_INVALID_OPTION' })
  t.throws(() => new CometChannel({ maxQeue: 1 } as never), { code: 'FST_COMET_INVALID_OPTION' })
  t.throws(() => new CometChannel(null as never), { code: 'FST_COMET_INVALID_OPTION' })
})

t.test('a burst published in one tick is written in a few large writes', async t => {
  const { app } = await build(t, { padding: 0, maxBytes: Infinity })
  const channel = app.comet.channel<string>({ maxQueue: 1000 })
  let writes = (): number => 0
  app.get('/comet', (request, reply) => {
    writes = countWrites(reply.raw)
    return reply.comet(channel, 'cb')
  })
  const client = await open(`${await listen(app)}/comet`)
  const before = writes()
  for (let i = 0; i < 200; i++) channel.publish(`${i} ${'b'.repeat(1000)}`)
  channel.close()
  await client.ended
  const received = messages(client.body(), 'cb') as string[]
  t.equal(received.length, 200)
  t.ok(received.every((message, i) => message.startsWith(`${i} `)), 'in order')
  t.ok(writes() - before <= 2 + Math.ceil(client.body().length / 16384), `${writes() - before} writes for 200 messages`)
})

t.test('a feed that delivers after its stream ended is ignored', async t => {
  // The contract a broker-backed source relies on: late deliveries after the stream stopped it are harmless.
  const { app, logs } = await build(t, { padding: 0 })
  let subscriber: CometSubscriber | undefined
  const stopped = { count: 0 }
  const feed = {
    [Symbol.for('fastify-comet.feed')]: (): CometFeed => ({
      maxQueue: 10,
      start: s => { subscriber = s },
      stop: () => { stopped.count++ }
    })
  }
  let settled!: Promise<void>
  let raw!: ServerResponse
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    settled = reply.comet(feed as never, 'cb')
    return settled
  })
  const client = await open(`${await listen(app)}/comet`)
  subscriber?.deliver('0,"first",')
  await client.waitFor('0,"first",')
  client.req.destroy()
  await settled
  t.equal(stopped.count, 1)
  const lateWrites = countWrites(raw)
  const linesBefore = logs.length
  subscriber?.deliver('0,"late",')
  subscriber?.end('done')
  subscriber?.fail(new Error('late failure'))
  await new Promise(setImmediate)
  t.equal(lateWrites(), 0, 'nothing written for a late delivery')
  t.equal(logs.length, linesBefore, 'a late end or failure is ignored: no second end, nothing logged')
  t.equal(stopped.count, 1, 'the feed was stopped once')
})

t.test('a subscriber that keeps up is never ended, even for bursts longer than maxQueue', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const channel = app.comet.channel<number>({ maxQueue: 10 })
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  for (let i = 0; i < 50; i++) channel.publish(i)
  channel.close()
  await client.ended
  t.same(messages(client.body(), 'cb'), Array.from({ length: 50 }, (_, i) => i))
  t.notOk(logs.some(line => line.level >= 40), 'no overflow was reported')
})

t.test('a HEAD request to a comet route gets the headers, and the stream never subscribes', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const channel = app.comet.channel()
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  const res = await app.inject({ method: 'HEAD', url: '/comet' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(res.body, '')
  t.equal(channel.size, 0)
  t.match(logs.find(line => line.msg === 'comet stream ended'), { reason: 'head' })
})

t.test('publish() after close() delivers nothing and does not throw', async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel<string>()
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  channel.close()
  channel.publish('after close')
  const res = await app.inject('/comet')
  t.same(messages(res.body, 'cb'), [], 'a subscriber of a closed channel ends at once, empty')
})
