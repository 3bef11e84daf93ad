// Named channels shared through Redis: every instance delivers every message in the same order
// with the same id, and a client resumes on any instance with exactly what it missed.
import t from 'tap'
import { build, logged, open, replay, replayWithControl } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { after, instance, keysOf, loadRedisBroker, until } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  const live = keysOf('chat').live
  const subscribers = async (): Promise<number> => {
    const [, count] = await redis.cli.pubsub('NUMSUB', live) as [string, number]
    return count
  }
  t.beforeEach(() => redis.cli.flushall())

  t.test('a message published on any instance reaches every instance in one order, with one id', async t => {
    const a = await instance(t, redis)
    const b = await instance(t, redis)
    const start = await a.chat.publish('start')
    const onA = await open(a.url + after(start))
    const onB = await open(b.url + after(start))
    // Published from both sides at once: Redis decides one order, and both instances follow it.
    const ids = await Promise.all(Array.from({ length: 20 }, (_, n) => (n % 2 === 0 ? a : b).chat.publish(n)))
    const [epoch] = start.split('-')
    t.same(ids.map(id => Number(id.slice(epoch.length + 1))).sort((x, y) => x - y), Array.from({ length: 20 }, (_, n) => n + 2), 'ids are numbered without gaps')
    const last = ids.reduce((x, y) => Number(x.split('-')[1]) > Number(y.split('-')[1]) ? x : y)
    await Promise.all([onA.waitFor(last), onB.waitFor(last)])
    const fromA = replay(onA.body(), 'cb')
    t.equal(fromA.length, 20)
    t.same(replay(onB.body(), 'cb'), fromA, 'the same messages, ids and order on both instances')
    t.same(fromA.map(([, id]) => id), [...ids].sort((x, y) => Number(x.split('-')[1]) - Number(y.split('-')[1])))
    onA.req.destroy()
    onB.req.destroy()
  })

  t.test('a client that disconnects from one instance resumes on another with exactly what it missed, then live', async t => {
    const a = await instance(t, redis)
    const b = await instance(t, redis)
    const start = await a.chat.publish(0)
    const first = await open(a.url + after(start))
    const seen = [await a.chat.publish(1), await a.chat.publish(2)]
    await first.waitFor(seen[1])
    first.req.destroy()
    const missed = [await b.chat.publish(3), await a.chat.publish(4), await b.chat.publish(5)]
    const second = await open(b.url + after(seen[1]))
    await second.waitFor(missed[2])
    const live = await a.chat.publish(6)
    await second.waitFor(live)
    second.req.destroy()
    t.same(replay(first.body(), 'cb'), [[1, seen[0]], [2, seen[1]]])
    t.same(replay(second.body(), 'cb'), [[3, missed[0]], [4, missed[1]], [5, missed[2]], [6, live]])
  })

  t.test('a replay longer than a page of the log arrives whole and in order', async t => {
    const a = await instance(t, redis, { history: 3000 })
    const b = await instance(t, redis, { history: 3000 })
    const start = await a.chat.publish(0)
    const ids = []
    for (let n = 1; n <= 1200; n++) ids.push(await a.chat.publish(n))
    const client = await open(b.url + after(start))
    await client.waitFor(ids[1199])
    client.req.destroy()
    t.same(replay(client.body(), 'cb'), ids.map((id, n) => [n + 1, id]))
  })

  t.test('an id the log cannot serve gives a reset, then live messages', async t => {
    const a = await instance(t, redis, { history: 3 })
    const ids = []
    for (let n = 1; n <= 6; n++) ids.push(await a.chat.publish(n))
    const [epoch] = ids[0].split('-')
    for (const [why, id] of [['older than the history', ids[1]], ['of another epoch', 'abcdefabcdef-5'], ['not an id', 'x'],
      ['not a number', `${epoch}-x`], ['ahead of the log', `${epoch}-99`]]) {
      const client = await open(a.url + after(id))
      await client.waitFor('"reset"')
      const next = await a.chat.publish('next')
      await client.waitFor(next)
      client.req.destroy()
      const reset = ['control', 'reset', { lastEventId: id, id: `${epoch}-${Number(next.split('-')[1]) - 1}` }]
      t.same(replayWithControl(client.body(), 'cb'), [reset, ['message', 'next', next]], why)
    }
  })

  t.test('a log that holds less than this instance\'s history (another keeps fewer, or it was deleted): a reset at once, what is left, then live', async t => {
    const a = await instance(t, redis, { history: 100 })
    const b = await instance(t, redis, { history: 3 }) // a rolling deploy that shortens the history
    const start = await a.chat.publish(0)
    const ids = [start]
    for (let n = 1; n <= 6; n++) ids.push(await b.chat.publish(n)) // trimmed to 3 entries by b
    const [epoch] = start.split('-')
    // a still thinks ids[1] is in reach: it reads the log, finds it gone, and says so before the rest.
    const client = await open(a.url + after(ids[1]))
    await client.waitFor(ids[6])
    const next = await a.chat.publish('next')
    await client.waitFor(next)
    const reset = ['control', 'reset', { lastEventId: ids[1], id: `${epoch}-4` }] // seqs 5 to 7 are left
    t.same(replayWithControl(client.body(), 'cb'), [reset, ['message', 4, ids[4]], ['message', 5, ids[5]], ['message', 6, ids[6]], ['message', 'next', next]])
    // The log deleted (evicted, or by hand) while its numbering stays: a reset to where the channel stands.
    await redis.cli.del(keysOf('chat').log)
    const again = await open(a.url + after(ids[4]))
    await again.waitFor('"reset"')
    const later = await a.chat.publish('later')
    await again.waitFor(later)
    client.req.destroy()
    again.req.destroy()
    t.same(replayWithControl(again.body(), 'cb'), [['control', 'reset', { lastEventId: ids[4], id: `${epoch}-8` }], ['message', 'later', later]])
  })

  t.test('an instance holds a Redis subscription for a channel only while it has subscribers there', async t => {
    const a = await instance(t, redis)
    const b = await instance(t, redis)
    t.equal(await subscribers(), 0, 'none before anyone subscribes')
    const start = await a.chat.publish(0)
    const clients = [await open(a.url + after(start)), await open(a.url + after(start)), await open(b.url + after(start))]
    const id = await b.chat.publish(1)
    await Promise.all(clients.map(client => client.waitFor(id)))
    t.equal(await subscribers(), 2, 'one subscription per instance, however many streams')
    clients[0].req.destroy()
    clients[2].req.destroy()
    await until(async () => await subscribers() === 1)
    clients[1].req.destroy()
    await until(async () => await subscribers() === 0)
    t.pass('the last stream gone, the instance unsubscribed')
    // Subscribing again reads where the channel stands, and goes on from there.
    const again = await open(b.url + after(id))
    const next = await a.chat.publish(2)
    await again.waitFor(next)
    again.req.destroy()
    t.same(replay(again.body(), 'cb'), [[2, next]])
  })

  t.test('a slow subscriber on one instance is ended alone; the others get every message', async t => {
    const a = await instance(t, redis, { maxQueue: 4 })
    const b = await instance(t, redis, { maxQueue: 4 })
    const start = await a.chat.publish(0)
    const fast = await open(b.url + after(start))
    const slow = await open(a.url + after(start))
    slow.res.pause()
    slow.req.socket?.pause()
    const big = 'x'.repeat(256 * 1024)
    const ended = logged(a.logs, line => line.msg.includes('fell too far behind'))
    const ids = []
    // Until the slow stream is ended: more than any socket buffers hold for it.
    for (let n = 1; n <= 200 && a.chat.size === 1; n++) ids.push(await a.chat.publish({ n, big }))
    await ended
    t.equal(a.chat.size, 0, 'the slow stream was ended')
    ids.push(await b.chat.publish('after'))
    await fast.waitFor(ids[ids.length - 1])
    t.same(replay(fast.body(), 'cb').map(([, id]) => id), ids, 'the fast one, on another instance, got every message')
    fast.req.destroy()
    slow.req.destroy()
  })

  t.test('a closed channel ends its subscribers here; the name then starts afresh in this instance', async t => {
    const a = await instance(t, redis)
    const start = await a.chat.publish(0)
    const client = await open(a.url + after(start))
    const id = await a.chat.publish(1)
    await client.waitFor(id)
    a.chat.close()
    a.chat.close()
    await client.ended
    await until(async () => await subscribers() === 0)
    t.equal(a.chat.size, 0)
    t.same(replay(client.body(), 'cb'), [[1, id]])
    const late = await open(a.url + after(id))
    await late.ended
    t.same(replay(late.body(), 'cb'), [], 'a stream of a closed channel ends at once')
  })

  t.test('a stream that ends while its instance reads the log leaves nothing behind', async t => {
    const a = await instance(t, redis, { history: 3000 })
    const b = await instance(t, redis, { history: 3000 })
    const start = await a.chat.publish(0)
    const steady = await open(a.url + after(start))
    const id = await a.chat.publish(1)
    await steady.waitFor(id)
    // Redis holds the reads (scripts that may write) for a while: both streams end meanwhile.
    await redis.cli.call('CLIENT', 'PAUSE', '300', 'WRITE')
    const replaying = await open(a.url + after(start)) // a follows the channel: it replays from the log
    const first = await open(b.url + after(start)) // b does not yet: it reads where the channel stands
    replaying.req.destroy()
    first.req.destroy()
    await until(async () => a.chat.size === 1 && b.chat.size === 0 && await subscribers() === 1)
    const next = await a.chat.publish(2)
    await steady.waitFor(next)
    steady.req.destroy()
    t.same(replay(steady.body(), 'cb').map(([message]) => message), [1, 2])
  })

  t.test('a stream that ends in the middle of a long replay stops reading the log', async t => {
    const a = await instance(t, redis, { history: 3000 })
    const b = await instance(t, redis, { history: 3000 })
    const start = await a.chat.publish(0)
    const big = 'x'.repeat(16 * 1024)
    const ids = []
    for (let n = 1; n <= 600; n++) ids.push(await a.chat.publish({ n, big }))
    const client = await open(b.url + after(start))
    await client.waitFor('"n":2,')
    client.res.pause() // the replay now waits for the socket to drain
    client.req.socket?.pause()
    client.req.destroy()
    await until(async () => b.chat.size === 0 && await subscribers() === 0)
    t.ok(client.body().split('"n":').length - 1 < 600, 'stopped before the end of the replay')
  })

  t.test('a replay trimmed past where it stands while it waited for the socket ends its stream, to reconnect', async t => {
    const a = await instance(t, redis, { history: 700 })
    const b = await instance(t, redis, { history: 700 })
    const start = await a.chat.publish(0)
    const big = 'x'.repeat(16 * 1024)
    for (let n = 1; n <= 600; n++) await a.chat.publish({ n, big })
    const client = await open(b.url + after(start))
    await client.waitFor('"n":2,')
    client.res.pause() // the replay of the first page now waits for the socket to drain
    client.req.socket?.pause()
    // Meanwhile the log moves on past the second page.
    for (let n = 601; n <= 1300; n++) await a.chat.publish({ n })
    client.res.resume()
    client.req.socket?.resume()
    await client.ended
    const calls = replayWithControl(client.body(), 'cb')
    t.same(calls.at(-1), ['control', 'reconnect', { delay: 'backoff' }], 'told to reconnect')
    t.same(calls.slice(0, -1).map(([, message]) => (message as { n: number }).n), Array.from({ length: 500 }, (_, n) => n + 1),
      'the first page, whole and in order, and nothing after the gap')
  })

  t.test('what Redis holds is escaped again on the way out: it can never end its script element', async t => {
    const a = await instance(t, redis)
    const b = await instance(t, redis)
    const start = await a.chat.publish(0)
    const live = await open(a.url + after(start))
    const hostile = '"</script><script>parent.pwned=1</script><!--"'
    // Written into Redis as another writer would: numbered, logged and published by hand, in the
    // broker's format (lib/redis/scripts.ts), so that it is delivered live as well as from the log.
    const [epoch, last] = start.split('-')
    const seq = Number(last) + 1
    const keys = keysOf('chat')
    const prev = await redis.cli.hget(keys.meta, 'tok')
    await redis.cli.hset(keys.meta, 'seq', seq, 'tok', 'hostile')
    await redis.cli.xadd(keys.log, `0-${seq}`, 'm', hostile, 't', 'hostile')
    await redis.cli.publish(keys.live, `${epoch} ${seq} ${prev} hostile ${hostile}`)
    const id = `${epoch}-${seq}`
    const replayed = await open(b.url + after(start))
    await Promise.all([live.waitFor(id), replayed.waitFor(id)])
    live.req.destroy()
    replayed.req.destroy()
    for (const client of [live, replayed]) {
      t.notMatch(client.body(), /<\/script><script>parent|<!--/)
      t.same(replay(client.body(), 'cb'), [[JSON.parse(hostile), id]])
    }
  })

  t.test('named channels on a broker need a history; unnamed ones stay in process', async t => {
    const { cometRedis } = loadRedisBroker()
    const { app } = await build(t, { broker: cometRedis({ url: redis.url }) })
    t.throws(() => app.comet.channel({ name: 'plain' }), { code: 'FST_COMET_INVALID_OPTION', message: /history/ })
    const local = app.comet.channel({ history: 5 })
    const [epoch] = (await local.publish(1)).split('-')
    t.equal(await redis.cli.exists(keysOf('plain').meta, `comet:{${epoch}}:meta`), 0, 'nothing of them in Redis')
    const shared = app.comet.channel({ name: 'shared', history: 5 })
    t.equal(app.comet.channel({ name: 'shared', history: 5 }), shared, 'a name gives back the same channel')
    t.throws(() => shared.publish(10n as unknown), { code: 'FST_COMET_UNSERIALIZABLE_MESSAGE' }, 'thrown at once, nothing sent')
    t.equal(await redis.cli.exists(keysOf('shared').meta), 0)
    t.same(app.comet.stats().channels, { open: 2, subscribers: 0 })
  })

  t.test('cometRedis() refuses options it cannot use, by name', async t => {
    const { cometRedis } = loadRedisBroker()
    const cases: Array<[unknown, string]> = [
      [{}, 'url'], [{ url: redis.url, client: redis.cli }, 'url'], [{ url: '' }, 'url'], [{ url: 7 }, 'url'],
      [{ client: {} }, 'client'], [{ url: redis.url, prefix: 1 }, 'prefix'], [{ url: redis.url, commandTimeout: 0 }, 'commandTimeout'],
      [{ url: redis.url, commandTimeout: 1.5 }, 'commandTimeout'], [{ url: redis.url, commandTimeout: 2 ** 31 }, 'commandTimeout'], [{ url: redis.url, maxInFlight: 0 }, 'maxInFlight'], [{ url: redis.url, maxInFlight: 2.5 }, 'maxInFlight'],
      [{ url: redis.url, host: 'x' }, 'host'], [null, 'options'],
      [{ url: redis.url, cluster: ['127.0.0.1:7000'] }, 'url'], [{ cluster: [] }, 'cluster'], [{ cluster: '127.0.0.1:7000' }, 'cluster'],
      [{ cluster: [''] }, 'cluster'], [{ cluster: [0] }, 'cluster'], [{ cluster: [null] }, 'cluster'], [{ cluster: [['127.0.0.1', 7000]] }, 'cluster']
    ]
    for (const [options, name] of cases) {
      t.throws(() => cometRedis(options as never), { code: 'FST_COMET_INVALID_OPTION', message: new RegExp(`"${name}"`) }, name)
    }
    t.doesNotThrow(() => cometRedis({ cluster: ['127.0.0.1:7000', 7001, { host: '127.0.0.1', port: 7002 }] }), 'a cluster\'s nodes as ioredis takes them')
    await t.rejects(build(t, { broker: {} as never }), { code: 'FST_COMET_INVALID_OPTION', message: /"broker"/ })
  })
}
