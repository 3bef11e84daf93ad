// A Redis that hangs (SIGSTOP: its connections stay open, nothing is answered): publish() fails,
// within commandTimeout or at once, and nothing queues meanwhile. At most `maxInFlight` publishes
// had been sent when it stopped answering; only those can still run once it wakes, and nothing
// sent later does. The instance takes the silent connection for lost, and is back once Redis is.
import t from 'tap'
import { logged, open, replay } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { after, instance, keysOf, until } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())
  t.afterEach(() => redis.wake())

  t.test('while Redis hangs, every publish fails, at most maxInFlight of them were sent, and none of the others runs once it wakes', async t => {
    const a = await instance(t, redis, { commandTimeout: 200, maxInFlight: 20 })
    const start = await a.chat.publish(0)
    const client = await open(a.url + after(start))
    redis.hang()
    const payload = 'x'.repeat(1024)
    const outcomes = await Promise.all(Array.from({ length: 3000 }, () =>
      a.chat.publish(payload).then(() => 'stored', (err: { code: string }) => err.code)))
    t.same([...new Set(outcomes)], ['FST_COMET_PUBLISH_FAILED'], 'every publish fails while Redis hangs')
    await logged(a.logs, line => line.msg.includes('lost the connection to Redis'))
    // Still hung, and known to be: a publish fails without waiting for Redis, so it was never sent.
    await t.rejects(a.chat.publish(payload), { code: 'FST_COMET_PUBLISH_FAILED' })
    redis.wake()
    await logged(a.logs, line => line.msg.includes('connected to Redis again'))
    let next: string | undefined
    await until(async () => { next = await a.chat.publish('next').catch(() => undefined); return next !== undefined })
    await client.waitFor(next as string)
    client.req.destroy()
    const seq = Number(await redis.cli.hget(keysOf('chat').meta, 'seq'))
    t.ok(seq <= 1 + 20 + 1, `Redis ran ${seq - 2} of the publishes reported failed (at most maxInFlight, 20)`)
    const delivered = replay(client.body(), 'cb').map(([message]) => message)
    t.same(delivered.at(-1), 'next', 'the stream lived through the hang and goes on')
  })

  t.test('a commands connection that hangs while nothing is published is found out by its ping, and made again', async t => {
    const a = await instance(t, redis, { commandTimeout: 100 })
    // So short a commandTimeout may be over before the connection is ready.
    await until(async () => await a.chat.publish(0).catch(() => undefined) !== undefined)
    redis.hang()
    // No publish and no channel followed: only the broker's own ping can tell.
    await logged(a.logs, line => line.msg.includes('lost the connection to Redis'))
    await t.rejects(a.chat.publish(1), { code: 'FST_COMET_PUBLISH_FAILED' })
    redis.wake()
    await logged(a.logs, line => line.msg.includes('connected to Redis again'))
    let next: string | undefined
    await until(async () => { next = await a.chat.publish(2).catch(() => undefined); return next !== undefined })
    t.match(next, /-2$/, 'the publish that failed while Redis hung was never run')
  })
}
