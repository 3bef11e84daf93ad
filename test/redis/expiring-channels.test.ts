// Channels that come and go leave nothing in Redis: a subscribe alone writes nothing, and with
// historyTtl a channel's keys expire, the epoch's record after its log, so that a client resuming
// from the newest id of a quiet channel goes on as it was, and one resuming from what aged out
// gets a reset.
import t, { type Test } from 'tap'
import type { CometBroker } from '../../lib/broker.js'
import { build, listen, open, replayWithControl } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { after, keysOf, loadRedisBroker, until } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())

  /** An application serving GET /rooms/:room from named channels with `historyTtl` (through the broker's own settings). */
  const rooms = async (t: Test, historyTtl: number) => {
    const { cometRedis } = loadRedisBroker()
    const broker = cometRedis({ url: redis.url })
    let connection: Awaited<ReturnType<typeof broker.connect>> | undefined
    const withTtl: CometBroker = {
      async connect (log) {
        connection = await broker.connect(log)
        return { channel: (name, settings) => (connection as NonNullable<typeof connection>).channel(name, { ...settings, historyTtl }), close: () => connection?.close() }
      }
    }
    const { app } = await build(t, { padding: 0, broker: withTtl })
    app.get<{ Params: { room: string } }>('/rooms/:room', (request, reply) =>
      reply.comet(app.comet.channel({ name: request.params.room, history: 10 }), 'cb'))
    return { app, base: `${await listen(app)}/rooms` }
  }

  t.test('a client of a room nobody published in, even one resuming, writes nothing to Redis', async t => {
    const { app, base } = await rooms(t, 0)
    const fresh = await open(`${base}/quiet`)
    const resuming = await open(`${base}/quiet${after('0123456789ab-7')}`)
    await resuming.waitFor('"reset"') // the instance has read the log: there is none
    t.equal(await redis.cli.dbsize(), 0, 'no key')
    // The first message is the room's start, not a reset, for a client that came before it.
    const id = await app.comet.channel({ name: 'quiet', history: 10 }).publish('first') as string
    await Promise.all([fresh.waitFor(id), resuming.waitFor(id)])
    fresh.req.destroy()
    resuming.req.destroy()
    t.same(replayWithControl(fresh.body(), 'cb'), [['message', 'first', id]])
    const [reset, message] = replayWithControl(resuming.body(), 'cb')
    t.same(reset, ['control', 'reset', { lastEventId: '0123456789ab-7', id: '-0' }], 'told where it stands: before any message')
    t.same(message, ['message', 'first', id])
    // Back from there (it left before the first message), it gets the room from its start.
    const back = await open(`${base}/quiet${after('-0')}`)
    await back.waitFor(id)
    back.req.destroy()
    t.same(replayWithControl(back.body(), 'cb'), [['message', 'first', id]])
  })

  t.test('with historyTtl, a room\'s keys expire, the epoch after the log: the newest id goes on, an older one gets a reset', async t => {
    const { app, base } = await rooms(t, 400)
    const room = app.comet.channel({ name: 'room', history: 10 })
    const ids = [await room.publish(1), await room.publish(2)] as string[]
    const keys = keysOf('room')
    const [logTtl, metaTtl] = [await redis.cli.pttl(keys.log), await redis.cli.pttl(keys.meta)]
    t.ok(logTtl > 0 && logTtl <= 400, `the log expires (${logTtl} ms)`)
    t.ok(metaTtl > logTtl, `the epoch's record outlives it (${metaTtl} ms)`)
    await until(async () => await redis.cli.exists(keys.log) === 0)
    t.equal(await redis.cli.exists(keys.meta), 1, 'the log aged out, the epoch is still known')
    const newest = await open(`${base}/room${after(ids[1])}`)
    const older = await open(`${base}/room${after(ids[0])}`)
    await older.waitFor('"reset"')
    const next = await room.publish(3) as string
    t.equal(next.split('-')[0], ids[0].split('-')[0], 'the same epoch: the numbers go on')
    await Promise.all([newest.waitFor(next), older.waitFor(next)])
    newest.req.destroy()
    older.req.destroy()
    t.same(replayWithControl(newest.body(), 'cb'), [['message', 3, next]], 'nothing missed, nothing to tell')
    t.match(replayWithControl(older.body(), 'cb'), [['control', 'reset', { lastEventId: ids[0], id: ids[1] }], ['message', 3, next]])
  })

  t.test('100,000 rooms used once each: with historyTtl, Redis holds no key of theirs once it has passed', async t => {
    const { cometRedis } = loadRedisBroker()
    // Not a test of timeouts: a busy machine may take seconds for a batch.
    const connection = await cometRedis({ url: redis.url, commandTimeout: 30_000 }).connect({ warn () {}, info () {}, debug () {}, error () {} } as never)
    t.teardown(() => connection.close())
    for (let n = 0; n < 100_000; n += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, k) =>
        connection.channel(`room-${n + k}`, { history: 10, maxQueue: 1, historyTtl: 2000 }).publish(n + k as never)))
    }
    t.same(await redis.cli.exists(keysOf('room-99999').log, keysOf('room-99999').meta), 2, 'a log and an epoch per room')
    await until(async () => await redis.cli.dbsize() === 0)
    t.pass('none left')
  })
}
