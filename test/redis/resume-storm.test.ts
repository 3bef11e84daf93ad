// A resume storm on one server (test/redis/resume-storm.ts): hundreds of clients come back at once
// from the oldest message of a long history, while the channel goes on; every stream replays in
// full and goes live, and publishes never wait behind the replays.
import t from 'tap'
import { useRedis } from './redis-server.js'
import { resumeStorm, STORM_OPTIONS } from './resume-storm.js'
import { instance } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.test('500 clients resuming from the oldest of 1,000 messages while a publisher sends every 50 ms: every stream replays, none fails, no publish fails', async t => {
    await resumeStorm(t, await instance(t, redis, STORM_OPTIONS))
  })
}
