// A resume storm on a Redis Cluster (test/redis/resume-storm.ts), as on one server: hundreds of
// clients come back at once from the oldest message of a long history on one shard, while the
// channel goes on; the replay reads wait their turn for that shard's primary, every stream replays
// in full and goes live, and publishes never wait behind the replays.
import t from 'tap'
import { useCluster } from './cluster.js'
import { resumeStorm, STORM_OPTIONS } from './resume-storm.js'
import { clusterInstance, until, type Instance } from './setup.js'

const startCluster = useCluster(t)
if (startCluster !== undefined) {
  t.test('on a cluster, 500 clients resuming from the oldest of 1,000 messages while a publisher sends every 50 ms: every stream replays, none fails, no publish fails', async t => {
    const cluster = await startCluster(t)
    const a = await clusterInstance(t, cluster.startupNodes, ['chat'], STORM_OPTIONS)
    const chat = a.channels.get('chat') as Instance['chat']
    // Its node's connection may still be on its way: the storm starts once a publish goes through.
    await until(async () => await chat.publish('ready').then(() => true, () => false))
    await resumeStorm(t, { url: `${a.origin}/comet/chat`, chat, logs: a.logs })
  })
}
