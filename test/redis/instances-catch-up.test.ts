// Instances in separate processes (test/redis/processes.ts) that stop hearing from Redis while it
// stays up: their subscriber connections killed (CLIENT KILL, or output-buffer limits on every
// message), or a read of the log timed out. Each catches up by itself: nothing lost or repeated.
import t from 'tap'
import { replayWithControl } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { publish, publishOnceReady, startInstances, subscribe } from './processes.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())

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
