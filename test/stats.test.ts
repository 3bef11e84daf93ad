// fastify.comet.stats(): streams open now, opened and ended since registration by reason, refusals,
// messages and bytes of open and ended streams, and the channels made by fastify.comet.channel()
// with their subscribers. Real sockets throughout; every number is checked against what the client saw.
import t from 'tap'
import http, { type ServerResponse } from 'node:http'
import { once } from 'node:events'
import v8 from 'node:v8'
import vm from 'node:vm'
import { CometChannel } from '../lib/channel.js'
import type { CometEndReason, CometStats } from '../types/index.js'
import { build, listen, logged, open, deferred, turns, type LogLine } from './helpers.js'

const NO_ENDS: Record<CometEndReason, number> = {
  done: 0, 'client-gone': 0, error: 0, shutdown: 0, 'max-bytes': 0, 'max-duration': 0, overflow: 0, head: 0, poll: 0
}

function endedWith (logs: LogLine[], reason: CometEndReason): Promise<LogLine> {
  return logged(logs, line => line.msg === 'comet stream ended' && line.reason === reason)
}

t.test('a fresh instance counts nothing', async t => {
  const { app } = await build(t)
  const expected: CometStats = {
    streams: { open: 0, opened: 0, ended: 0, endReasons: NO_ENDS, refused: 0 },
    messages: 0,
    bytes: 0,
    channels: { open: 0, subscribers: 0 }
  }
  t.same(app.comet.stats(), expected)
})

t.test('streams are counted as they open and end, by reason', async t => {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const channel = app.comet.channel<string>({ maxQueue: 1 })
  const never = deferred()
  const raws: ServerResponse[] = []
  app.get('/done', (request, reply) => reply.comet(['a', 'b'], 'cb'))
  app.get('/error', (request, reply) => reply.comet(async function * () { yield 'a'; throw new Error('boom') }, 'cb'))
  app.get('/max-bytes', (request, reply) => reply.comet(['a', 'b', 'c'], { callback: 'cb', maxBytes: 20 }))
  app.get('/max-duration', (request, reply) => reply.comet(async function * () { await never.promise }, { callback: 'cb', maxDuration: 1 }))
  app.get('/forever', (request, reply) => reply.comet(async function * () { await never.promise }, 'cb'))
  app.get('/channel', (request, reply) => {
    raws.push(reply.raw)
    return reply.comet(channel, 'cb')
  })
  const origin = await listen(app)
  const ends = (): Record<CometEndReason, number> => app.comet.stats().streams.endReasons

  await (await open(`${origin}/done`)).ended
  await endedWith(logs, 'done')
  t.same(ends(), { ...NO_ENDS, done: 1 }, 'done')

  const [headRes] = await once(http.request(`${origin}/done`, { method: 'HEAD', agent: false }).end(), 'response') as [http.IncomingMessage]
  await once(headRes.resume(), 'end')
  await endedWith(logs, 'head')
  t.same(ends(), { ...NO_ENDS, done: 1, head: 1 }, 'head')

  await (await open(`${origin}/error`)).ended
  await endedWith(logs, 'error')
  t.equal(ends().error, 1, 'error')

  await (await open(`${origin}/max-bytes`)).ended
  await endedWith(logs, 'max-bytes')
  t.equal(ends()['max-bytes'], 1, 'max-bytes')

  await (await open(`${origin}/max-duration`)).ended
  await endedWith(logs, 'max-duration')
  t.equal(ends()['max-duration'], 1, 'max-duration')

  const gone = await open(`${origin}/forever`)
  await gone.waitFor('<body>')
  t.equal(app.comet.stats().streams.open, 1, 'one stream open')
  gone.req.destroy()
  await endedWith(logs, 'client-gone')
  t.equal(ends()['client-gone'], 1, 'client-gone')

  // A subscriber whose client stopped reading, once its socket is full, overflows a maxQueue of 1.
  const slow = await open(`${origin}/channel`)
  slow.res.pause()
  const big = 'x'.repeat(65536)
  while (!raws[0].writableNeedDrain && !raws[0].writableEnded) {
    channel.publish(big)
    await turns(1)
  }
  for (let i = 0; i < 4; i++) channel.publish('more')
  await endedWith(logs, 'overflow')
  slow.req.destroy()
  t.equal(ends().overflow, 1, 'overflow')

  const polled = await open(`${origin}/channel?transport=poll`)
  await polled.waitFor('<body>')
  channel.publish('polled')
  await polled.ended
  await endedWith(logs, 'poll')
  t.equal(ends().poll, 1, 'poll')

  await open(`${origin}/forever`)
  await app.close()
  t.same(app.comet.stats().streams, {
    open: 0,
    opened: 9,
    ended: 9,
    endReasons: { done: 1, head: 1, error: 1, 'max-bytes': 1, 'max-duration': 1, 'client-gone': 1, overflow: 1, shutdown: 1, poll: 1 },
    refused: 0
  }, 'shutdown, and every stream counted once')
  never.resolve()
})

t.test('messages and bytes add up open and ended streams, byte for byte what the clients received', async t => {
  const { app } = await build(t, { padding: 100 })
  const channel = app.comet.channel<string>()
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  app.get('/once', (request, reply) => reply.comet(['é', '€'], 'cb'))
  const origin = await listen(app)

  const finished = await open(`${origin}/once`)
  await finished.ended
  const first = await open(`${origin}/comet`)
  const second = await open(`${origin}/comet`)
  channel.publish('one')
  channel.publish('two')
  await Promise.all([first.waitFor('0,"two",'), second.waitFor('0,"two",')])
  const bytes = (...clients: Array<{ body: () => string }>): number => clients.reduce((sum, client) => sum + Buffer.byteLength(client.body()), 0)

  const during = app.comet.stats()
  t.equal(during.streams.open, 2)
  t.equal(during.messages, 2 + 2 * 2, 'the ended stream\'s 2 messages and 2 for each open one')
  t.equal(during.bytes, bytes(finished, first, second), 'every byte the three clients received (multi-byte characters as bytes)')

  channel.close()
  await Promise.all([first.ended, second.ended])
  const after = app.comet.stats()
  t.equal(after.streams.open, 0)
  t.equal(after.messages, 6, 'unchanged once the streams ended')
  t.equal(after.bytes, bytes(finished, first, second), 'the same bytes, now from ended streams')
})

t.test('stats() returns a snapshot that neither changes later nor changes the counters', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  const before = app.comet.stats()
  await (await open(`${await listen(app)}/comet`)).ended
  await turns(1)
  t.equal(before.streams.opened, 0, 'the old snapshot is unchanged')
  before.streams.endReasons.done = 99
  before.streams.opened = 99
  const after = app.comet.stats()
  t.equal(after.streams.opened, 1)
  t.equal(after.streams.endReasons.done, 1, 'writing to a snapshot changes nothing')
  t.not(after.streams.endReasons, app.comet.stats().streams.endReasons, 'each call makes new objects')
})

t.test('channels made by fastify.comet.channel() are counted with their subscribers until closed', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const news = app.comet.channel()
  const sport = app.comet.channel()
  const outside = new CometChannel() // made without the instance: not its to count
  app.get('/news', (request, reply) => reply.comet(news, 'cb'))
  app.get('/sport', (request, reply) => reply.comet(sport, 'cb'))
  app.get('/outside', (request, reply) => reply.comet(outside, 'cb'))
  const origin = await listen(app)
  t.same(app.comet.stats().channels, { open: 2, subscribers: 0 })

  const readers = await Promise.all([open(`${origin}/news`), open(`${origin}/news`), open(`${origin}/news`), open(`${origin}/sport`), open(`${origin}/outside`)])
  t.same(app.comet.stats().channels, { open: 2, subscribers: 4 }, 'three and one; the outside channel\'s subscriber is not counted')
  t.equal(app.comet.stats().streams.open, 5, 'though its stream is')

  readers[0].req.destroy()
  await logged(logs, line => line.msg === 'comet stream ended' && line.reason === 'client-gone')
  t.same(app.comet.stats().channels, { open: 2, subscribers: 3 }, 'a client that left is no longer a subscriber')

  news.close()
  await Promise.all([readers[1].ended, readers[2].ended])
  t.same(app.comet.stats().channels, { open: 1, subscribers: 1 }, 'a closed channel is no longer counted')
  t.same(app.comet.stats().channels, { open: 1, subscribers: 1 }, 'nor later')
  outside.close()
  sport.close()
  t.same(app.comet.stats().channels, { open: 0, subscribers: 0 })
})

t.test('a named channel is counted once, however many times it is asked for', async t => {
  const { app } = await build(t)
  const first = app.comet.channel({ name: 'news' })
  const again = app.comet.channel({ name: 'news' })
  t.equal(again, first, 'the same channel')
  app.comet.channel({ name: 'sport' })
  t.same(app.comet.stats().channels, { open: 2, subscribers: 0 })
})

t.test('a channel dropped without close() is not kept alive by being counted', async t => {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const { app } = await build(t)
  const kept = app.comet.channel()
  // More than the registry holds before it sweeps itself, none of them kept.
  for (let i = 0; i < 100; i++) app.comet.channel()
  t.same(app.comet.stats().channels, { open: 101, subscribers: 0 }, 'counted while alive')
  await turns(1) // a WeakRef holds its target until the job that made it is over
  gc()
  t.same(app.comet.stats().channels, { open: 1, subscribers: 0 }, 'the dropped channels are gone')
  t.equal(kept.size, 0)
})
