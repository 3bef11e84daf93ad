// `?since=MS` on Redis: a client that leaves while Redis looks for its window (Redis hung) lets
// its place in the reads go, and the next client on that connection gets its window. In a file of
// its own: after the other since tests in one file (one redis-server), an instance of this test
// did not finish closing (cause not found; each file passes alone).
import t from 'tap'
import { logged, open, replayWithControl } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { instance } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())
  t.afterEach(() => redis.wake())

  t.test('a client that leaves while Redis looks for its window lets go; the next one gets its window', async t => {
    const a = await instance(t, redis)
    const b = await instance(t, redis, { commandTimeout: 60000 }) // Redis hangs below: b keeps waiting
    const keeper = await open(b.url)
    const first = await a.chat.publish('first')
    await keeper.waitFor(first) // b knows where the channel stands: a new client asks Redis at once
    redis.hang()
    const leaving = await open(`${b.url}?since=3600000`)
    await leaving.waitFor('2,"open"')
    leaving.req.destroy()
    await logged(b.logs, line => line.msg === 'comet stream ended')
    redis.wake()
    // Asked after the one that left, on the same connection: answered after it.
    const next = await open(`${b.url}?transport=poll&since=3600000`)
    await next.ended
    t.same(replayWithControl(next.body(), 'cb'), [['message', 'first', first], ['control', 'reconnect', { delay: 0 }]])
    const live = await a.chat.publish('live')
    await keeper.waitFor(live)
    keeper.req.destroy()
    t.same(replayWithControl(keeper.body(), 'cb'), [['message', 'first', first], ['message', 'live', live]], 'the others go on')
  })
}
