// What an instance does when Redis goes away, comes back empty, drops its subscriber connection,
// or goes back in time: publish() fails within commandTimeout, streams stay open, and once Redis
// is back every subscriber gets every message it can still get, once and in order, or a reset.
import t, { type Test } from 'tap'
import { build, logged, open, replay, replayWithControl } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { after, instance, keysOf, loadRedisBroker, silencer, until } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())

  /** Kills the connections Redis lists for `filter` (e.g. TYPE pubsub, or by name). */
  const kill = async (...filter: string[]): Promise<void> => {
    await redis.cli.call('CLIENT', 'KILL', ...filter)
  }
  /** The ids of the connections named `name` of one type. */
  const connections = async (name: string, type: 'pubsub' | 'normal'): Promise<string[]> => {
    const list = await redis.cli.call('CLIENT', 'LIST', 'TYPE', type) as string
    return list.split('\n').filter(line => line.includes(` name=${name} `)).map(line => /id=(\d+)/.exec(line)?.[1] as string)
  }
  /** An instance whose connections, once dropped, come back only after a second: time to act while it lags. */
  const lagging = (t: Test, name: string, options: { history?: number, name?: string } = {}): ReturnType<typeof instance> =>
    instance(t, redis, { ...options, redisOptions: { connectionName: name, retryStrategy: () => 1000 } })
  const seq = (id: string): number => Number(id.split('-')[1])
  /**
   * Instance a publishes; lagging instance b (named `name`) has a steady client that got messages
   * 1 and 2, then b's subscriber is killed: b hears nothing more for a second.
   */
  const laggingSince2 = async (t: Test, name: string, options: { history?: number } = {}) => {
    const a = await instance(t, redis, options)
    const b = await lagging(t, name, options)
    const start = await a.chat.publish(0)
    const steady = await open(b.url + after(start))
    const early = [await a.chat.publish(1), await a.chat.publish(2)]
    await steady.waitFor(early[1])
    const [subscriber] = await connections(name, 'pubsub')
    await kill('ID', subscriber)
    return { a, b, steady, early }
  }

  t.test('while Redis is down, publish() fails at once and streams stay open; back empty, subscribers get a reset, then live', async t => {
    const a = await instance(t, redis, { heartbeat: 50 })
    const start = await a.chat.publish(0)
    const client = await open(a.url + after(start))
    const before = await a.chat.publish(1)
    await client.waitFor(before)
    await redis.kill()
    await logged(a.logs, line => line.msg.includes('lost the connection to Redis'))
    await t.rejects(a.chat.publish(2), { code: 'FST_COMET_PUBLISH_FAILED', statusCode: 503 })
    await new Promise<void>(resolve => client.res.on('data', chunk => { if (String(chunk).includes('__fastifyComet([2,"beat",0,])')) resolve() }))
    t.pass('heartbeats go on: the stream is alive without Redis')
    await redis.start()
    await logged(a.logs, line => line.msg.includes('connected to Redis again'))
    await client.waitFor('"reset"')
    let next: string | undefined
    await until(async () => { next = await a.chat.publish(3).catch(() => undefined); return next !== undefined })
    await client.waitFor(next as string)
    client.req.destroy()
    const [, reset] = replayWithControl(client.body(), 'cb')
    const [epoch] = (next as string).split('-')
    t.not(epoch, start.split('-')[0], 'a new epoch: old ids can never match new messages')
    // Told once Redis is back: nobody has published there yet, so it stands before any message.
    t.same(reset, ['control', 'reset', { lastEventId: before, id: '-0' }])
    t.same(replay(client.body(), 'cb').map(([message]) => message), [1, 3])
  })

  t.test('subscriber connections killed by Redis: instances reconnect and deliver what was published meanwhile, once, in order', async t => {
    const a = await instance(t, redis)
    const b = await instance(t, redis)
    const start = await a.chat.publish(0)
    const clients = [await open(a.url + after(start)), await open(b.url + after(start))]
    const ids: string[] = []
    for (let n = 1; n <= 60; n++) {
      if (n === 20 || n === 40) await kill('TYPE', 'pubsub')
      ids.push(await (n % 2 === 0 ? a : b).chat.publish(n))
    }
    await Promise.all(clients.map(client => client.waitFor(ids[59])))
    for (const client of clients) {
      client.req.destroy()
      t.same(replay(client.body(), 'cb'), ids.map((id, n) => [n + 1, id]))
    }
  })

  t.test('a log that went back in time under one epoch (a failover that lost writes) is retired: reset, then live', async t => {
    const a = await instance(t, redis)
    const start = await a.chat.publish(0)
    const client = await open(a.url + after(start))
    const ids = [await a.chat.publish(1), await a.chat.publish(2), await a.chat.publish(3)]
    await client.waitFor(ids[2])
    const keys = keysOf('chat')
    await redis.cli.hset(keys.meta, 'seq', seq(ids[0]))
    await redis.cli.xtrim(keys.log, 'MAXLEN', 1)
    await kill('TYPE', 'pubsub') // the instance reads the log when it reconnects
    await client.waitFor('"reset"')
    const next = await a.chat.publish(4)
    await client.waitFor(next)
    client.req.destroy()
    t.not(next.split('-')[0], start.split('-')[0], 'the old epoch is retired')
    t.same(replayWithControl(client.body(), 'cb').slice(3), [
      ['control', 'reset', { lastEventId: ids[2], id: `${next.split('-')[0]}-${seq(ids[0])}` }],
      ['message', 4, next]
    ])
  })

  t.test('a log that forked under one epoch (a failover lost writes, then new messages took their numbers) is retired: reset, then live', async t => {
    const a = await instance(t, redis)
    const b = await instance(t, redis) // publishes; follows nothing
    const start = await a.chat.publish(0)
    const client = await open(a.url + after(start))
    const ids = []
    for (let n = 1; n <= 5; n++) ids.push(await a.chat.publish(n))
    await client.waitFor(ids[4])
    // The replica that takes over had received seqs up to 4 (messages up to 3): the last two are lost.
    const keys = keysOf('chat')
    const [[, fields]] = await redis.cli.xrange(keys.log, `0-${seq(ids[2])}`, `0-${seq(ids[2])}`)
    await redis.cli.hset(keys.meta, 'seq', seq(ids[2]), 'tok', fields[3])
    await redis.cli.xdel(keys.log, `0-${seq(ids[3])}`, `0-${seq(ids[4])}`)
    await redis.cli.xsetid(keys.log, `0-${seq(ids[2])}`)
    // New messages take the lost numbers, and one more: a has delivered 5 and 6 already, so only
    // the tokens can tell that 7 does not follow them.
    const forked = [await b.chat.publish('x'), await b.chat.publish('y'), await b.chat.publish('z')]
    t.same(forked.map(seq), [5, 6, 7], 'numbered like the lost ones')
    await client.waitFor('"reset"')
    const next = await b.chat.publish('next')
    await client.waitFor(next)
    client.req.destroy()
    const [epoch] = start.split('-')
    t.not(next.split('-')[0], epoch, 'the forked epoch is retired')
    t.same(replayWithControl(client.body(), 'cb'), [
      ...ids.map((id, n) => ['message', n + 1, id]),
      ['control', 'reset', { lastEventId: ids[4], id: `${next.split('-')[0]}-7` }],
      ['message', 'next', next]
    ], 'no message of the fork, and a reset where the new epoch stands')
  })

  t.test('a client ahead of a lagging instance gets nothing twice; one behind what the log still holds is told at once', async t => {
    const { a, b, steady, early } = await laggingSince2(t, 'lagging-b', { history: 3 })
    // b hears nothing for a second, while a publishes past b's history.
    const missed = []
    for (let n = 3; n <= 8; n++) missed.push(await a.chat.publish(n))
    // Came from a, which delivered 8 already: b waits for it rather than sending it again.
    const ahead = await open(b.url + after(missed[5]))
    const next = await a.chat.publish(9)
    // b believes 1 can still be replayed, but Redis trimmed it: a reset at once, then what the log holds.
    const behind = await open(b.url + after(early[0]))
    await Promise.all([steady.waitFor(next), ahead.waitFor(next), behind.waitFor(next)])
    steady.req.destroy()
    ahead.req.destroy()
    behind.req.destroy()
    t.same(replay(ahead.body(), 'cb'), [[9, next]])
    // b catches up a second later, when the log holds the last three (7, 8 and 9).
    t.same(replayWithControl(steady.body(), 'cb'), [
      ['message', 1, early[0]], ['message', 2, early[1]],
      ['control', 'reset', { lastEventId: early[1], id: missed[3] }],
      ['message', 7, missed[4]], ['message', 8, missed[5]], ['message', 9, next]
    ], 'the steady one was told what it lost, then got what the log held')
    t.same(replayWithControl(behind.body(), 'cb'), [
      ['control', 'reset', { lastEventId: early[0], id: missed[3] }],
      ['message', 7, missed[4]], ['message', 8, missed[5]], ['message', 9, next]
    ], 'the one behind was told what it lost, then got what the log held')
  })

  t.test('a replay that finds the log started afresh (this instance has not heard yet) ends its stream, to reconnect', async t => {
    const { b, steady, early } = await laggingSince2(t, 'lagging-c')
    const keys = keysOf('chat')
    await redis.cli.del(keys.meta, keys.log) // b still follows the old epoch for a second
    const client = await open(b.url + after(early[0]))
    await client.ended
    steady.req.destroy()
    t.same(replayWithControl(client.body(), 'cb'), [['control', 'reconnect', { delay: 'backoff' }]])
  })

  t.test('a subscriber connection that goes silent without closing (a partition, a dead host) is given up and made again: nothing lost', async t => {
    const proxy = await silencer(t, redis)
    // Pinged every 5 commandTimeouts: every half second here.
    const a = await instance(t, { ...redis, url: proxy.url }, { commandTimeout: 100 })
    const b = await instance(t, redis)
    const start = await b.chat.publish(0)
    const client = await open(a.url + after(start))
    const ids = [await b.chat.publish(1)]
    await client.waitFor(ids[0])
    proxy.silenceSubscribers()
    ids.push(await b.chat.publish(2), await b.chat.publish(3)) // a hears nothing of these
    // Not a word from the connection itself: the unanswered ping says it.
    await logged(a.logs, line => line.msg.includes('lost the connection to Redis') && /timed out/.test(line.err?.message ?? ''))
    await client.waitFor(ids[2])
    ids.push(await b.chat.publish(4))
    await client.waitFor(ids[3])
    client.req.destroy()
    t.same(replay(client.body(), 'cb'), ids.map((id, n) => [n + 1, id]), 'each once, in order')
  })

  t.test('a subscription Redis refuses (an ACL without the channel) is logged as an error, by channel', async t => {
    await redis.cli.call('ACL', 'SETUSER', 'deaf', 'on', '>secret', '~*', 'resetchannels', '+@all')
    t.teardown(() => redis.cli.call('ACL', 'DELUSER', 'deaf'))
    const a = await instance(t, redis, { redisOptions: { username: 'deaf', password: 'secret' } })
    const client = await open(a.url)
    const line = await logged(a.logs, line => line.msg.includes('Redis refused the subscription'))
    client.req.destroy()
    t.equal(line.level, 50, 'an error')
    t.equal(line.channel, keysOf('chat').live)
    t.match(line.err?.message, /NOPERM/)
  })

  t.test('a log read that fails while commands cannot run is tried again once they can', async t => {
    const a = await instance(t, redis)
    const b = await lagging(t, 'lagging-c')
    const [commands] = await connections('lagging-c', 'normal')
    await kill('ID', commands)
    // b's subscriber still works: it subscribes, but cannot read where the channel stands yet.
    const start = await a.chat.publish(0)
    const client = await open(b.url + after(start))
    const id = await a.chat.publish(1)
    await client.waitFor(id)
    client.req.destroy()
    t.same(replay(client.body(), 'cb'), [[1, id]])
  })

  t.test('a log read that timed out while Redis held it is tried again, with no message to prompt it', async t => {
    const a = await instance(t, redis, { commandTimeout: 200 })
    let start: string | undefined
    // With so short a timeout the broker may start before its connection is ready.
    await until(async () => { start = await a.chat.publish(0).catch(() => undefined); return start !== undefined })
    const missed = [await a.chat.publish(1), await a.chat.publish(2)]
    // Scripts wait (they may write), pub/sub does not: the instance subscribes, and its read of the
    // log times out, with the connection up: no reconnection will prompt another read.
    await redis.cli.call('CLIENT', 'PAUSE', '60000', 'WRITE')
    t.teardown(() => redis.cli.call('CLIENT', 'UNPAUSE'))
    const client = await open(a.url + after(start as string))
    await logged(a.logs, line => line.msg.includes("could not read a channel's log") && /timed out/i.test(line.err?.message ?? ''))
    await redis.cli.call('CLIENT', 'UNPAUSE')
    await client.waitFor(missed[1])
    client.req.destroy()
    t.same(replay(client.body(), 'cb'), [[1, missed[0]], [2, missed[1]]])
  })

  t.test('a message on the live channel that the broker did not send is ignored', async t => {
    const a = await instance(t, redis)
    const start = await a.chat.publish(0)
    const client = await open(a.url + after(start))
    const id = await a.chat.publish(1)
    await client.waitFor(id)
    await redis.cli.publish(keysOf('chat').live, 'not-a-message')
    const next = await a.chat.publish(2)
    await client.waitFor(next)
    client.req.destroy()
    t.same(replay(client.body(), 'cb'), [[1, id], [2, next]])
  })

  t.test('an instance too busy to read the answer in time still gets its publish, even from a client with its own commandTimeout', async t => {
    // The application's client would time commands out after 1 ms; the broker's 50 ms apply.
    const a = await instance(t, redis, { commandTimeout: 50, redisOptions: { commandTimeout: 1 } })
    await a.chat.publish(0) // the script is loaded: the next publish is one round trip
    const published = a.chat.publish(1)
    // Busy past commandTimeout, as an instance delivering a burst to thousands of sockets is:
    // Redis answered long before the event loop gets to read it.
    const busyUntil = Date.now() + 200
    while (Date.now() < busyUntil);
    t.match(await published, /^[0-9a-f]+-2$/, 'resolved with its id')
    t.equal(await redis.cli.xlen(keysOf('chat').log), 2, 'stored once')
  })

  t.test('an application that starts while Redis is down starts, and publishes once Redis is back', async t => {
    await redis.kill()
    t.teardown(() => redis.start())
    const { cometRedis } = loadRedisBroker()
    const { app, logs } = await build(t, { broker: cometRedis({ url: redis.url, commandTimeout: 50 }) })
    t.ok(logs.some(line => line.msg.includes('did not answer within 50 ms')))
    const chat = app.comet.channel({ name: 'chat', history: 10 })
    await t.rejects(chat.publish(1), { code: 'FST_COMET_PUBLISH_FAILED' })
    await redis.start()
    await until(async () => (await chat.publish(2).catch(() => undefined)) !== undefined)
    t.pass('published once Redis was back')
  })

  t.test('a broker made from the application\'s ioredis client leaves that client as it was', async t => {
    const { Redis } = await import('ioredis')
    const client = new Redis(redis.url)
    t.teardown(() => client.disconnect())
    await client.ping() // ready, as the application's client is by the time it registers the plugin
    const { cometRedis } = loadRedisBroker()
    const { app } = await build(t, { broker: cometRedis({ client }) })
    await app.comet.channel({ name: 'chat', history: 10 }).publish('x')
    await app.close()
    t.equal(client.status, 'ready', 'still connected after the application closed')
    t.equal(await client.xlen(keysOf('chat').log), 1)
  })
}
