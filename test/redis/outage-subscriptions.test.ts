// An outage keeps no growing state: streams of named channels that open and close while Redis is
// away queue no SUBSCRIBE or UNSUBSCRIBE. Once the subscriber is back, it subscribes, in one
// command, to the channels followed at that moment, and to nothing else.
import t from 'tap'
import { build, listen, logged, open } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { loadRedisBroker, until } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  /** Calls of `command` Redis counted since it started (INFO commandstats). */
  const calls = async (command: string): Promise<number> => {
    const info = await redis.cli.info('commandstats')
    return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
  }

  t.test('rooms opened and closed while Redis is away queue nothing; back, one SUBSCRIBE for the rooms followed then', async t => {
    const { cometRedis } = loadRedisBroker()
    const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity, broker: cometRedis({ url: redis.url }) })
    app.get<{ Params: { room: string } }>('/rooms/:room', (request, reply) =>
      reply.comet(app.comet.channel({ name: request.params.room, history: 10 }), 'cb'))
    const base = `${await listen(app)}/rooms`
    const kept = await open(`${base}/kept`)
    await redis.kill()
    await logged(logs, line => line.msg.includes('lost the connection to Redis'))
    for (let n = 0; n < 300; n++) {
      const visitor = await open(`${base}/room-${n}`)
      visitor.req.destroy()
      await until(async () => app.comet.stats().streams.open === 1)
    }
    await redis.start()
    await logged(logs, line => line.msg.includes('connected to Redis again'))
    const room = app.comet.channel({ name: 'kept', history: 10 })
    let id: string | undefined
    await until(async () => { id = await room.publish('back').catch(() => undefined); return id !== undefined })
    await kept.waitFor(id as string)
    t.equal(await calls('subscribe'), 1, 'one SUBSCRIBE once back')
    t.equal(await calls('unsubscribe'), 0, 'no UNSUBSCRIBE of a room that came and went')
    t.same(await redis.cli.call('PUBSUB', 'NUMSUB', 'comet:{kept}:live', 'comet:{room-0}:live'),
      ['comet:{kept}:live', 1, 'comet:{room-0}:live', 0], 'subscribed to the room still followed, and to no other')
    kept.req.destroy()
  })
}
