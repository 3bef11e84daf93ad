// Instances in separate processes (test/redis/processes.ts) when Redis fails them: killed and
// restarted empty, or paused past commandTimeout. Publishing answers 503 meanwhile, streams stay
// open (new ones too), and afterwards every instance delivers every message it can still get,
// once and in order, or a reset. (Connections dropped or reads timed out: instances-catch-up.)
import t from 'tap'
import { replayWithControl } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { keysOf } from './setup.js'
import { epochOf, post, publish, publishOnceReady, seq, startInstances, subscribe } from './processes.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())

  t.test('redis-server killed and restarted empty: publishing answers 503 meanwhile, streams stay open, then a reset and live messages', async t => {
    const servers = await startInstances(t, redis, 2)
    const [a, b] = servers
    const start = await publish(a, 0)
    const clients = await Promise.all(servers.map(server => subscribe(server, start)))
    const before = await publish(b, 1)
    await Promise.all(clients.map(client => client.waitFor(before)))

    await redis.kill()
    await Promise.all(servers.map(server => server.logged(line => line.msg.includes('lost the connection to Redis'))))
    for (const [n, server] of servers.entries()) {
      const res = await post(server, 'during the outage')
      t.equal(res.status, 503, `instance ${n}: the publish route answers 503`)
      t.match(await res.json(), { code: 'FST_COMET_PUBLISH_FAILED' })
    }
    // A heartbeat written after the outage began: the streams are alive without Redis.
    await Promise.all(clients.map(client => new Promise<void>(resolve => {
      client.res.on('data', chunk => { if (String(chunk).includes('__fastifyComet([2,"beat",0,])')) resolve() })
    })))

    await redis.start()
    // A client's reset comes from its instance's read of the log; its publishing connection may
    // be back a moment later.
    await Promise.all(clients.map(client => client.waitFor('"reset"')))
    const next = [await publishOnceReady(b, 2), await publishOnceReady(a, 3)]
    await Promise.all(clients.map(client => client.waitFor(next[1])))
    const epoch = epochOf(next[0])
    t.not(epoch, epochOf(start), 'a new epoch: ids of the old one can never match new messages')
    t.same(next.map(seq), [1, 2], 'numbered from 1 again')
    for (const [n, client] of clients.entries()) {
      client.req.destroy()
      t.same(replayWithControl(client.body(), 'cb'), [
        ['message', 1, before],
        ['control', 'reset', { lastEventId: before, id: '-0' }], // before any message of the empty Redis
        ['message', 2, next[0]],
        ['message', 3, next[1]]
      ], `instance ${n}: what it had, a reset, then live; nothing from the outage`)
    }
    const log = await redis.cli.xrange(keysOf('chat').log, '-', '+')
    t.same(log.map(([, [, message]]) => JSON.parse(message)), [2, 3], 'the refused publishes were not stored')
  })

  t.test('clients that connect while Redis is down get their streams, then a reset and live messages once it is back', async t => {
    const servers = await startInstances(t, redis, 2)
    const [a, b] = servers
    const start = await publish(a, 0)
    const steady = await subscribe(a, start)
    const before = await publish(a, 1)
    await steady.waitFor(before)

    await redis.kill()
    await Promise.all(servers.map(server => server.logged(line => line.msg.includes('lost the connection to Redis'))))
    // a follows the channel already; b starts to follow it now, with its subscriber connection down.
    const late = await Promise.all(servers.map(server => subscribe(server, before)))
    t.same(late.map(client => client.res.statusCode), [200, 200], 'both streams open')

    await redis.start()
    await Promise.all([steady, ...late].map(client => client.waitFor('"reset"')))
    // Reading is back (the resets came through it); b's commands connection may follow a moment later.
    const next = await publishOnceReady(b, 2)
    await Promise.all([steady, ...late].map(client => client.waitFor(next)))
    const reset = ['control', 'reset', { lastEventId: before, id: '-0' }] // before any message of the empty Redis
    steady.req.destroy()
    t.same(replayWithControl(steady.body(), 'cb'), [['message', 1, before], reset, ['message', 2, next]])
    for (const [n, client] of late.entries()) {
      client.req.destroy()
      t.same(replayWithControl(client.body(), 'cb'), [reset, ['message', 2, next]], `instance ${n}: a reset, then live`)
    }
  })

  t.test('a Redis that stops answering: publishing answers 503 after commandTimeout, and the publish that failed never runs', async t => {
    const servers = await startInstances(t, redis, 2, { COMMAND_TIMEOUT: '400' })
    const [a, b] = servers
    const start = await publishOnceReady(a, 0)
    const clients = await Promise.all(servers.map(server => subscribe(server, start)))
    const before = await publishOnceReady(b, 1)
    await Promise.all(clients.map(client => client.waitFor(before)))
    // Every command waits until the pause ends, 4 s from now (10 times commandTimeout): a 503
    // means the instance gave up first.
    await redis.cli.call('CLIENT', 'PAUSE', '4000', 'ALL')
    const res = await post(a, 2)
    t.equal(res.status, 503, 'the publish route answers 503 while Redis holds the command')
    t.match(await res.json(), { code: 'FST_COMET_PUBLISH_FAILED', message: /timed out/i })
    await redis.cli.ping() // answered once the pause is over (CLIENT UNPAUSE would wait too)
    // b's own connections may be being made again (silent during the pause, they failed their ping).
    const after = await publishOnceReady(b, 3)
    await Promise.all(clients.map(client => client.waitFor(after)))
    for (const [n, client] of clients.entries()) {
      client.req.destroy()
      // The publish that timed out was held by Redis, and dropped with the connection the instance
      // gave up on: it never ran, and the numbers go on without it.
      t.same(replayWithControl(client.body(), 'cb'), [['message', 1, before], ['message', 3, after]], `instance ${n}`)
      t.equal(after, `${epochOf(start)}-3`)
    }
  })
}
