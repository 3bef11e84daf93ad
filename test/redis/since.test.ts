// `?since=MS` on channels shared through Redis: Redis stamps every message with its own clock and
// measures the window with it, so a client with no id gets, on any instance, exactly what was
// published in the last MS milliseconds, then live; a window that reaches what the log no longer
// holds is a reset. Logs written before messages had times count as older than any window.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { open, replayWithControl } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { instance, keysOf } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())
  t.afterEach(() => redis.wake())

  t.test('on another instance, a stream with since gets exactly what was published within the window, then live', async t => {
    const [a, b] = [await instance(t, redis), await instance(t, redis)]
    await a.chat.publish('early-1')
    await a.chat.publish('early-2')
    // The age of messages is the behaviour under test: a real gap between the early and the later
    // ones, long enough that the window (reaching back to its middle when the request leaves) still
    // covers the later ones however long the request takes to reach Redis on a busy machine.
    const gapStart = performance.now()
    await sleep(1000)
    const gapEnd = performance.now()
    const later = [await a.chat.publish('later-1'), await a.chat.publish('later-2')]
    const since = Math.round(performance.now() - (gapStart + gapEnd) / 2)
    const client = await open(`${b.url}?since=${since}`)
    await client.waitFor('"later-2"')
    const live = await a.chat.publish('live')
    await client.waitFor('"live"')
    client.req.destroy()
    t.same(replayWithControl(client.body(), 'cb'), [
      ['message', 'later-1', later[0]],
      ['message', 'later-2', later[1]],
      ['message', 'live', live]
    ])
  })

  t.test('a window reaching past what the log holds: a reset to the newest id, then live', async t => {
    const [a, b] = [await instance(t, redis, { history: 3 }), await instance(t, redis, { history: 3 })]
    const ids = []
    for (let n = 1; n <= 5; n++) ids.push(await a.chat.publish(n)) // the log keeps 3, 4 and 5
    const trimmed = await open(`${b.url}?since=3600000`)
    await trimmed.waitFor('"reset"')
    const live = await a.chat.publish(6)
    await trimmed.waitFor(live)
    trimmed.req.destroy()
    t.same(replayWithControl(trimmed.body(), 'cb'), [['control', 'reset', { id: ids[4] }], ['message', 6, live]])
  })

  t.test('a poll with since on another instance: what is in the window, and the poll ends', async t => {
    const [a, b] = [await instance(t, redis), await instance(t, redis)]
    const ids = [await a.chat.publish('one'), await a.chat.publish('two')]
    const client = await open(`${b.url}?transport=poll&since=3600000`)
    await client.ended
    t.same(replayWithControl(client.body(), 'cb'), [
      ['message', 'one', ids[0]],
      ['message', 'two', ids[1]],
      ['control', 'reconnect', { delay: 0 }]
    ])
  })

  t.test('entries written before messages had times are older than any window; an id still wins over since', async t => {
    const keys = keysOf('chat')
    // A log as an earlier version wrote it (no times), which had already dropped seqs 1 to 4.
    await redis.cli.hset(keys.meta, 'epoch', '0123456789ab', 'seq', '6', 'tok', 't6')
    await redis.cli.xadd(keys.log, '0-5', 'm', '"old 5"', 't', 't5')
    await redis.cli.xadd(keys.log, '0-6', 'm', '"old 6"', 't', 't6')
    const [a, b] = [await instance(t, redis), await instance(t, redis)]
    const fresh = await a.chat.publish('new')
    t.equal(fresh, '0123456789ab-7', 'the old epoch goes on')
    const client = await open(`${b.url}?transport=poll&since=3600000`)
    await client.ended
    t.same(replayWithControl(client.body(), 'cb'), [['message', 'new', fresh], ['control', 'reconnect', { delay: 0 }]],
      'no reset for what was dropped before times were kept, and none of the old entries')
    const withId = await open(`${b.url}?transport=poll&since=3600000&lastEventId=0123456789ab-5`)
    await withId.ended
    t.same(replayWithControl(withId.body(), 'cb').map(call => call[1]), ['old 6', 'new', 'reconnect'], 'an id: everything after it')
  })

  t.test('a log that expired (historyTtl) with a message in the window: a reset', async t => {
    const [a, b] = [await instance(t, redis), await instance(t, redis)]
    const id = await a.chat.publish('gone')
    await redis.cli.del(keysOf('chat').log) // as PEXPIRE does once historyTtl has gone by
    const client = await open(`${b.url}?transport=poll&since=3600000`)
    await client.ended
    t.same(replayWithControl(client.body(), 'cb'), [['control', 'reset', { id }], ['control', 'reconnect', { delay: 0 }]])
  })
}
