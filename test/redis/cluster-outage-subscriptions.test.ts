// An outage of one shard keeps no growing state, as with one server (outage-subscriptions.test.ts):
// rooms of that shard opened and closed while its primary is dead leave nothing to send once a
// replica has taken over. The new primary is subscribed to the room followed then, and to nothing
// else: no SSUBSCRIBE or SUNSUBSCRIBE of a room that came and went (before, ioredis tried each again
// for ~2 s: those of the last rooms reached the new primary, 70 and 69 in one run).
import t from 'tap'
import { open } from '../helpers.js'
import { namesOnEveryShard, useCluster, type ClusterNode } from './cluster.js'
import { clusterInstance, until } from './setup.js'

/** Calls of `command` a node counted since it started (INFO commandstats). */
async function calls (node: ClusterNode, command: string): Promise<number> {
  const info = await node.cli.info('commandstats')
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info)?.[1] ?? 0)
}

const startCluster = useCluster(t)
if (startCluster !== undefined) {
  t.test('rooms of a shard opened and closed while its primary is dead queue nothing; after the failover, subscribed to the room followed then only', async t => {
    // No failover by itself: the shard stays down for as long as the test says.
    const cluster = await startCluster(t, { nodeTimeout: 60_000 })
    // Once every node knows the shard's replica (the cluster's view settles shard by shard).
    let [victim] = await cluster.shards()
    await until(async () => { [victim] = await cluster.shards(); return victim.replicas.length > 0 })
    const [[kept, ...rooms]] = await namesOnEveryShard(cluster, [victim], 301)
    const a = await clusterInstance(t, cluster.startupNodes, [kept, ...rooms])
    const publish = async (): Promise<string | undefined> => await a.channels.get(kept)?.publish('back').catch(() => undefined)
    await until(async () => await publish() !== undefined)
    const stream = await open(`${a.origin}/comet/${kept}`)
    const [replica] = victim.replicas
    await until(async () => (await victim.primary.cli.call('PUBSUB', 'SHARDNUMSUB', `comet:{${kept}}:live`) as [string, number])[1] === 1)

    await victim.primary.kill()
    await until(async () => await publish() === undefined)
    for (const room of rooms) {
      const visitor = await open(`${a.origin}/comet/${room}`)
      visitor.req.destroy()
      await until(async () => a.app.comet.stats().streams.open === 1)
    }
    t.equal(await calls(replica, 'ssubscribe'), 0, 'a replica is sent no subscription')
    await replica.cli.call('CLUSTER', 'FAILOVER', 'TAKEOVER')
    await cluster.settled()
    let id: string | undefined
    await until(async () => { id = await publish(); return id !== undefined })
    await stream.waitFor(id as string)
    // Subscribed again on the new primary (the stream may have had the message from the log).
    await until(async () => (await replica.cli.call('PUBSUB', 'SHARDNUMSUB', `comet:{${kept}}:live`) as [string, number])[1] === 1)
    // A subscription of a room that came and went, had it been kept to be sent, would end with its
    // unsubscription. (ioredis may subscribe a slot's channels again more than once: at each change it sees.)
    t.equal(await calls(replica, 'sunsubscribe'), 0, 'no SUNSUBSCRIBE, so no SSUBSCRIBE either, of a room that came and went')
    t.same(await replica.cli.call('PUBSUB', 'SHARDNUMSUB', `comet:{${kept}}:live`, `comet:{${rooms[0]}}:live`),
      [`comet:{${kept}}:live`, 1, `comet:{${rooms[0]}}:live`, 0], 'subscribed to the room still followed, and to no other')
    stream.req.destroy()
    // Said once each, give or take the failover's own reconnections: not at every failed attempt
    // at the dead node, with the other shards' connections ready (22 to 754 times each before).
    const said = (text: string): number => a.logs.filter(line => line.msg.includes(text)).length
    t.ok(said('lost the connection to Redis') <= 3, `lost the connection: said ${said('lost the connection to Redis')} times`)
    t.ok(said('connected to Redis again') <= 3, `connected again: said ${said('connected to Redis again')} times`)
  })
}
