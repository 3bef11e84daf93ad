// Instances in separate processes (test/redis/processes.ts) when Redis fails them: killed and
// restarted empty, paused past commandTimeout, or dropping their subscriber connections. Publishing
// answers 503 meanwhile, streams stay open, and afterwards every instance delivers every message it
// can still get, once and in order, or a reset.
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
      client.res.on('data', chunk => { if (chunk === '\n') resolve() })
    })))

    await redis.start()
    // A client's reset comes from its instance's read of the log: its commands run again.
    await Promise.all(clients.map(client => client.waitFor('"reset"')))
    const next = [await publish(b, 2), await publish(a, 3)]
    await Promise.all(clients.map(client => client.waitFor(next[1])))
    const epoch = epochOf(next[0])
    t.not(epoch, epochOf(start), 'a new epoch: ids of the old one can never match new messages')
    t.same(next.map(seq), [1, 2], 'numbered from 1 again')
    for (const [n, client] of clients.entries()) {
      client.req.destroy()
      t.same(replayWithControl(client.body(), 'cb'), [
        ['message', 1, before],
        ['control', 'reset', { lastEventId: before, id: `${epoch}-0` }],
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
    const next = await publish(b, 2)
    await Promise.all([steady, ...late].map(client => client.waitFor(next)))
    const reset = ['control', 'reset', { lastEventId: before, id: `${epochOf(next)}-0` }]
    steady.req.destroy()
    t.same(replayWithControl(steady.body(), 'cb'), [['message', 1, before], reset, ['message', 2, next]])
    for (const [n, client] of late.entries()) {
      client.req.destroy()
      t.same(replayWithControl(client.body(), 'cb'), [reset, ['message', 2, next]], `instance ${n}: a reset, then live`)
    }
  })

  t.test('a Redis that stops answering: publishing answers 503 after commandTimeout; what it stored meanwhile arrives once, in order', async t => {
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
    const after = await publish(b, 3)
    await Promise.all(clients.map(client => client.waitFor(after)))
    for (const [n, client] of clients.entries()) {
      client.req.destroy()
      // Redis ran the publish that timed out once it could (the README says so): it is delivered
      // like any other, once and in its place.
      t.same(replayWithControl(client.body(), 'cb'), [['message', 1, before], ['message', 2, `${epochOf(start)}-3`], ['message', 3, after]], `instance ${n}`)
    }
  })

  t.test('a log read that timed out while Redis held it is read again once Redis answers, with no publish to prompt it', async t => {
    const [a, b] = await startInstances(t, redis, 2, { COMMAND_TIMEOUT: '200', LOG_LEVEL: 'debug' })
    const start = await publishOnceReady(a, 0)
    const missed = [await publishOnceReady(b, 1), await publish(a, 2)] // b's commands run: it is connected
    // Scripts wait (they may write), pub/sub does not: b subscribes, and its read of the log times
    // out with the connection up, so no reconnection prompts another read.
    await redis.cli.call('CLIENT', 'PAUSE', '60000', 'WRITE')
    t.teardown(() => redis.cli.call('CLIENT', 'UNPAUSE'))
    const client = await subscribe(b, start)
    await b.logged(line => line.msg.includes("could not read a channel's log") && /timed out/i.test(line.err?.message ?? ''))
    await redis.cli.call('CLIENT', 'UNPAUSE')
    // Nothing is published from here on: b reads the log again by itself.
    await client.waitFor(missed[1])
    client.req.destroy()
    t.same(replayWithControl(client.body(), 'cb'), [['message', 1, missed[0]], ['message', 2, missed[1]]])
  })

  t.test('subscriber connections killed by Redis: every instance catches up, nothing lost or repeated', async t => {
    const servers = await startInstances(t, redis, 2)
    const start = await publish(servers[0], 0)
    const clients = await Promise.all(servers.map(server => subscribe(server, start)))
    const ids: string[] = []
    for (let n = 1; n <= 60; n++) {
      if (n === 20 || n === 40) await redis.cli.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
      ids.push(await publish(servers[n % 2], n))
    }
    await Promise.all(clients.map(client => client.waitFor(ids[59])))
    for (const [n, client] of clients.entries()) {
      client.req.destroy()
      t.same(replayWithControl(client.body(), 'cb'), ids.map((id, i) => ['message', i + 1, id]), `instance ${n}: 1 to 60, once each, in order, no reset`)
    }
  })

  t.test('subscriber connections dropped by Redis for their output buffer on every message: nothing lost or repeated', async t => {
    const servers = await startInstances(t, redis, 2)
    const start = await publish(servers[0], 0)
    const clients = await Promise.all(servers.map(server => subscribe(server, start)))
    const subscribers = async (): Promise<string[]> => {
      const list = await redis.cli.call('CLIENT', 'LIST', 'TYPE', 'pubsub') as string
      return [...list.matchAll(/^id=(\d+)/gm)].map(([, id]) => id)
    }
    const before = await subscribers()
    // A message that does not fit a connection's 16 KiB reply buffer overflows the 1 KiB limit
    // set here: Redis drops every subscriber connection it is sent to.
    await redis.cli.config('SET', 'client-output-buffer-limit', 'pubsub 1024 1024 0')
    t.teardown(() => redis.cli.config('SET', 'client-output-buffer-limit', 'pubsub 32mb 8mb 60'))
    const big = 'x'.repeat(64 * 1024)
    const ids: string[] = []
    for (let n = 1; n <= 20; n++) ids.push(await publish(servers[n % 2], { n, big }))
    await Promise.all(clients.map(client => client.waitFor(ids[19])))
    t.same((await subscribers()).filter(id => before.includes(id)), [], 'Redis dropped the subscribers it had')
    for (const [n, client] of clients.entries()) {
      client.req.destroy()
      t.same(replayWithControl(client.body(), 'cb').map(([type, message, id]) => [type, (message as { n: number }).n, id]),
        ids.map((id, i) => ['message', i + 1, id]), `instance ${n}: 1 to 20, once each, in order, no reset`)
    }
  })
}
