// Instances on a Redis Cluster (3 primaries, 3 replicas, test/redis/cluster.ts): 30 channels
// spread over every primary, each channel's messages published on its own shard and sent only
// within it (sharded pub/sub); every subscriber of either instance gets every message of its
// channel once, in order, with the id publish() gave, and a client resumes on the other instance
// with exactly what it missed.
import t from 'tap'
import { open, replay } from '../helpers.js'
import { namesOnEveryShard, useCluster } from './cluster.js'
import { after, clusterInstance } from './setup.js'

const startCluster = useCluster(t)
if (startCluster !== undefined) {
  t.test('30 channels over 3 shards: every subscriber of either instance gets every message once, in order, with its id', async t => {
    const cluster = await startCluster(t)
    const shards = await cluster.shards()
    const byShard = await namesOnEveryShard(cluster, shards, 10)
    const names = byShard.flat()
    const a = await clusterInstance(t, cluster.startupNodes, names)
    const b = await clusterInstance(t, cluster.startupNodes, names, { client: true })
    const starts = await Promise.all(names.map(name => (a.channels.get(name)?.publish('start') as Promise<string>)))
    const clients = await Promise.all(names.flatMap((name, n) => [a, b].map(instance => open(`${instance.origin}/comet/${name}${after(starts[n])}`))))
    // Every channel at once, through both instances: 10 messages each, published in turn.
    const published = await Promise.all(names.map(async (name, n) => {
      const ids: Array<[number, string]> = []
      for (let m = 0; m < 10; m++) ids.push([m, await ((m % 2 === 0 ? a : b).channels.get(name)?.publish(m) as Promise<string>)])
      return ids
    }))
    await Promise.all(clients.map((client, n) => client.waitFor(published[Math.floor(n / 2)][9][1])))
    // While the streams are open: each channel is followed on its own shard.
    for (const [s, shard] of shards.entries()) {
      const channels = await shard.primary.cli.call('PUBSUB', 'SHARDCHANNELS', 'comet:*') as string[]
      t.same(channels.sort(), byShard[s].map(name => `comet:{${name}}:live`).sort(), 'each primary has the sharded subscriptions of its own channels, and only those')
    }
    t.same(await shards[0].primary.cli.call('PUBSUB', 'CHANNELS', '*'), [], 'no classic pub/sub, which every node would relay')
    for (const [n, client] of clients.entries()) {
      client.req.destroy()
      t.same(replay(client.body(), 'cb'), published[Math.floor(n / 2)], `${names[Math.floor(n / 2)]} on instance ${'ab'[n % 2]}`)
    }
  })

  t.test('a client that leaves one instance resumes on the other with exactly what it missed, on every shard', async t => {
    const cluster = await startCluster(t)
    const shards = await cluster.shards()
    const names = (await namesOnEveryShard(cluster, shards, 1)).flat()
    const a = await clusterInstance(t, cluster.startupNodes, names)
    const b = await clusterInstance(t, cluster.startupNodes, names, { client: true })
    for (const name of names) {
      const start = await (a.channels.get(name)?.publish(0) as Promise<string>)
      const first = await open(`${a.origin}/comet/${name}${after(start)}`)
      const seen = await (b.channels.get(name)?.publish(1) as Promise<string>)
      await first.waitFor(seen)
      first.req.destroy()
      const missed = [await (a.channels.get(name)?.publish(2) as Promise<string>), await (b.channels.get(name)?.publish(3) as Promise<string>)]
      const second = await open(`${b.origin}/comet/${name}${after(seen)}`)
      await second.waitFor(missed[1])
      const live = await (a.channels.get(name)?.publish(4) as Promise<string>)
      await second.waitFor(live)
      second.req.destroy()
      t.same(replay(first.body(), 'cb'), [[1, seen]], name)
      t.same(replay(second.body(), 'cb'), [[2, missed[0]], [3, missed[1]], [4, live]], name)
    }
  })
}
