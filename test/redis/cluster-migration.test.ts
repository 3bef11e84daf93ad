// A channel's slot moved to another primary while it publishes (CLUSTER SETSLOT IMPORTING and
// MIGRATING, MIGRATE of its keys, SETSLOT NODE), as resharding does: publishes follow ASK and
// MOVED, the instances follow the channel to its new shard, and every client gets every
// acknowledged message once, in order, with its id, in one epoch: nothing lost, repeated or reset.
import t from 'tap'
import { open, replayWithControl } from '../helpers.js'
import { namesOnEveryShard, useCluster } from './cluster.js'
import { after, clusterInstance, until } from './setup.js'

const startCluster = useCluster(t)
if (startCluster !== undefined) {
  t.test('a slot migrated during traffic: nothing lost, repeated or reset', async t => {
    const cluster = await startCluster(t)
    const [source, target, third] = await cluster.shards()
    const [[name]] = await namesOnEveryShard(cluster, [source], 1)
    const slot = await cluster.slotOf(name)
    const instances = [await clusterInstance(t, cluster.startupNodes, [name]), await clusterInstance(t, cluster.startupNodes, [name], { client: true })]
    const start = await (instances[0].channels.get(name)?.publish('start') as Promise<string>)
    const clients = await Promise.all(instances.map(instance => open(`${instance.origin}/comet/${name}${after(start)}`)))
    const acked: Array<[value: number, id: string]> = []
    const failed: number[] = []

    // Publishes in turn through both instances until stopped.
    const state = { stopped: false }
    t.teardown(() => { state.stopped = true })
    const traffic = (async () => {
      for (let n = 0; !state.stopped; n++) {
        try {
          acked.push([n, await (instances[n % 2].channels.get(name)?.publish(n) as Promise<string>)])
        } catch {
          failed.push(n)
        }
      }
    })()
    const published = async (count: number): Promise<void> => {
      const target = acked.length + count
      await until(async () => acked.length >= target)
    }

    await published(10)
    const sourceId = await source.primary.cli.cluster('MYID') as string
    const targetId = await target.primary.cli.cluster('MYID') as string
    await target.primary.cli.cluster('SETSLOT', slot, 'IMPORTING', sourceId)
    await source.primary.cli.cluster('SETSLOT', slot, 'MIGRATING', targetId)
    await published(10)
    // The channel's keys go together (its script needs both where it runs); meanwhile its
    // publishes are told ASK, or TRYAGAIN, and follow.
    const keys = await source.primary.cli.cluster('GETKEYSINSLOT', slot, 100) as string[]
    t.ok(keys.length >= 2, 'the channel has keys in its slot')
    await source.primary.cli.call('MIGRATE', '127.0.0.1', String(target.primary.port), '', '0', '5000', 'KEYS', ...keys)
    await published(10)
    // The new owner first, the source last: once it gives the slot up, everyone knows where it went.
    for (const node of [target.primary, third.primary, source.primary]) {
      await node.cli.cluster('SETSLOT', slot, 'NODE', targetId)
    }
    await published(10)
    // Both instances follow it on its new shard.
    await until(async () => (await target.primary.cli.call('PUBSUB', 'SHARDNUMSUB', `comet:{${name}}:live`) as [string, number])[1] === 2)
    await published(10)
    state.stopped = true
    await traffic
    await Promise.all(clients.map(client => client.waitFor(acked[acked.length - 1][1])))

    t.equal(await target.primary.cli.exists(`comet:{${name}}:meta`, `comet:{${name}}:log`), 2, 'the channel lives on its new shard')
    t.same(await source.primary.cli.call('PUBSUB', 'SHARDCHANNELS', `comet:{${name}}:live`), [], 'and is followed there only')
    t.same(failed, [], 'no publish failed')
    t.ok(acked.every(([, id]) => id.split('-')[0] === start.split('-')[0]), 'one epoch throughout')
    for (const [i, client] of clients.entries()) {
      client.req.destroy()
      t.same(replayWithControl(client.body(), 'cb'), acked.map(([value, id]) => ['message', value, id]), `instance ${'ab'[i]}: every message once, in order, with its id, no reset`)
    }
  })
}
