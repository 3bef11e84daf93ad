// A subscriber that throws while it takes a message is failed, and the broker's message handler
// (which runs inside the Redis client's event) never sees the error. Loaded only with redis-server,
// like all the broker's code, so that coverage does not depend on it.
import t from 'tap'
import { kCometFeed } from '../../lib/feed.js'
import type { RedisLink } from '../../lib/redis/link.js'
import { recordingSubscriber as subscriber } from '../helpers.js'
import { useRedis } from './redis-server.js'

const redis = useRedis(t)
if (redis !== undefined) {
  const { BrokeredChannel } = require('../../lib/redis/channel.js') as typeof import('../../lib/redis/channel.js')

  t.test("brokered channel: a subscriber that throws is failed, the broker's handler and the others go on", async t => {
    const link = {
      keysOf: (name: string) => ({ meta: `${name}:meta`, log: `${name}:log` }),
      follow: () => ({}),
      unfollow: () => {}
    } as unknown as RedisLink
    const channel = new BrokeredChannel<string>('room', { history: 10, maxQueue: 10, historyTtl: 0 }, link)
    const before = subscriber()
    const broken = subscriber(true)
    const after = subscriber()
    for (const s of [before, broken, after]) channel[kCometFeed]({ lastEventId: undefined }).start(s)
    channel.located('0123456789ab', 0)
    t.doesNotThrow(() => channel.message('0123456789ab', 1, '"hello"'), 'the message handler does not throw')
    t.equal(before.entries.length, 1, 'the subscriber before it got the message')
    t.equal(after.entries.length, 1, 'the subscriber after it got the message')
    t.match(broken.failures, [{ name: 'RangeError' }], 'the broken one was failed with its error')
  })
}
