// A read of a channel's log that Redis refuses while the connection stays up (here the log's key
// holds a string, as a stray command could leave it): the channel tries again every 500 ms, a
// client's replay twice more (after 0.5 s, then 1 s) before its stream ends; once the log can be
// read, both go on with nothing lost.
import t, { type Test } from 'tap'
import { logged, open, replay, type LogLine, type OpenStream } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { after, instance, keysOf, type Instance } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())
  const keys = keysOf('chat')
  /** The log's key holds a string until `mend()`. */
  const breakLog = async (): Promise<() => Promise<void>> => {
    await redis.cli.rename(keys.log, 'kept-log')
    await redis.cli.set(keys.log, 'not a stream')
    return async () => {
      await redis.cli.del(keys.log)
      await redis.cli.rename('kept-log', keys.log)
    }
  }
  const refused = (what: string) => (line: LogLine): boolean => line.msg.includes(what) && /WRONGTYPE/.test(line.err?.message ?? '')

  t.test('a channel\'s read that Redis refuses with the connection up is tried again until it succeeds', async t => {
    const a = await instance(t, redis)
    const start = await a.chat.publish(0)
    const client = await open(a.url + after(start))
    const ids = [await a.chat.publish(1)]
    await client.waitFor(ids[0])
    const mend = await breakLog()
    await redis.cli.call('CLIENT', 'KILL', 'TYPE', 'pubsub') // back, the instance reads the log
    const first = await logged(a.logs, refused("could not read a channel's log from Redis"))
    await logged(a.logs, line => line !== first && refused("could not read a channel's log from Redis")(line)) // and again
    await mend()
    ids.push(await a.chat.publish(2))
    await client.waitFor(ids[1])
    client.req.destroy()
    t.same(replay(client.body(), 'cb'), [[1, ids[0]], [2, ids[1]]])
  })

  t.test('a replay read that Redis refuses is tried again before the stream is ended', async t => {
    const a = await instance(t, redis)
    const start = await a.chat.publish(0)
    const ids = [await a.chat.publish(1), await a.chat.publish(2)]
    const steady = await open(a.url + after(ids[1])) // the instance knows where the channel stands
    await steady.waitFor('__fastifyComet')
    const mend = await breakLog()
    const client = await open(a.url + after(start))
    await logged(a.logs, refused('for a replay; trying again in 500 ms'))
    await mend()
    await client.waitFor(ids[1])
    client.req.destroy()
    steady.req.destroy()
    t.same(replay(client.body(), 'cb'), [[1, ids[0]], [2, ids[1]]])
  })

  t.test('a replay read refused three times ends that stream, logged; the instance goes on', async t => {
    const a = await instance(t, redis)
    const start = await a.chat.publish(0)
    const ids = [await a.chat.publish(1)]
    const steady = await open(a.url + after(ids[0]))
    await steady.waitFor('__fastifyComet')
    await refusedThreeTimes(t, a, steady, ids, a.url + after(start))
  })

  t.test('a since window Redis refuses to look up three times ends that stream, logged; the instance goes on', async t => {
    const a = await instance(t, redis)
    const ids = [await a.chat.publish(1)]
    const steady = await open(a.url + after(ids[0])) // the instance knows where the channel stands
    await steady.waitFor('__fastifyComet')
    await refusedThreeTimes(t, a, steady, ids, `${a.url}?since=3600000`)
  })

  /** With the log broken, a client of `url` is refused three times and its stream ends, logged; `steady` goes on. */
  async function refusedThreeTimes (t: Test, a: Instance, steady: OpenStream, ids: string[], url: string): Promise<void> {
    const mend = await breakLog()
    const client = await open(url)
    await client.ended
    const failure = await logged(a.logs, line => line.msg === 'comet stream ended: the source failed')
    t.match(failure.err?.message, /WRONGTYPE/)
    t.equal(a.logs.filter(refused('for a replay; trying again')).length, 2, 'tried three times')
    await mend()
    ids.push(await a.chat.publish(2))
    await steady.waitFor(ids[1])
    steady.req.destroy()
    t.same(replay(steady.body(), 'cb'), [[2, ids[1]]])
  }
}
