// `?since=MS` on a Redis Cluster: each channel's window is measured by the clock of the primary
// that owns its slot, so a client with no id gets, on the other instance and on every shard,
// exactly what was published in the last MS milliseconds, then live; a window that reaches past
// what the log holds is a reset. One cluster for the file (starting one takes seconds).
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { open, replayWithControl } from '../helpers.js'
import { namesOnEveryShard, useCluster } from './cluster.js'
import { clusterInstance } from './setup.js'

const startCluster = useCluster(t)
if (startCluster !== undefined) {
  t.test('since on a cluster', async t => {
    const cluster = await startCluster(t)
    const shards = await cluster.shards()

    t.test('on the other instance, on every shard: exactly what was published within the window, then live', async t => {
      const names = (await namesOnEveryShard(cluster, shards, 2, 'window')).flat()
      const a = await clusterInstance(t, cluster.startupNodes, names)
      const b = await clusterInstance(t, cluster.startupNodes, names, { client: true })
      const publish = async (instance: typeof a, name: string, value: string): Promise<string> =>
        await (instance.channels.get(name)?.publish(value) as Promise<string>)
      await Promise.all(names.map(async name => {
        await publish(a, name, 'early-1')
        await publish(b, name, 'early-2')
      }))
      // The age of messages is the behaviour under test: a real gap between the early and the later
      // ones, long enough that the window (reaching back to its middle when the requests leave)
      // still covers the later ones however long the requests take on a busy machine.
      const gapStart = performance.now()
      await sleep(1000)
      const gapEnd = performance.now()
      const later = await Promise.all(names.map(async name => [await publish(a, name, 'later-1'), await publish(b, name, 'later-2')]))
      const since = Math.round(performance.now() - (gapStart + gapEnd) / 2)
      const clients = await Promise.all(names.map(name => open(`${b.origin}/comet/${name}?since=${since}`)))
      await Promise.all(clients.map(client => client.waitFor('"later-2"')))
      const live = await Promise.all(names.map(name => publish(a, name, 'live')))
      await Promise.all(clients.map((client, n) => client.waitFor(live[n])))
      for (const [n, client] of clients.entries()) {
        client.req.destroy()
        t.same(replayWithControl(client.body(), 'cb'), [
          ['message', 'later-1', later[n][0]],
          ['message', 'later-2', later[n][1]],
          ['message', 'live', live[n]]
        ], names[n])
      }
    })

    t.test('a window reaching past what the log holds, on every shard: a reset to the newest id, then live', async t => {
      const names = (await namesOnEveryShard(cluster, shards, 1, 'trimmed')).flat()
      const a = await clusterInstance(t, cluster.startupNodes, names, { history: 3 })
      const b = await clusterInstance(t, cluster.startupNodes, names, { client: true, history: 3 })
      for (const name of names) {
        let newest = ''
        for (let n = 1; n <= 5; n++) newest = await (a.channels.get(name)?.publish(n) as Promise<string>) // the log keeps 3, 4 and 5
        const client = await open(`${b.origin}/comet/${name}?since=3600000`)
        await client.waitFor('"reset"')
        const live = await (a.channels.get(name)?.publish(6) as Promise<string>)
        await client.waitFor(live)
        client.req.destroy()
        t.same(replayWithControl(client.body(), 'cb'), [['control', 'reset', { id: newest }], ['message', 6, live]], name)
      }
    })

    t.test('a poll with since on the other instance, on every shard: what is in the window, and the poll ends', async t => {
      const names = (await namesOnEveryShard(cluster, shards, 1, 'poll')).flat()
      const a = await clusterInstance(t, cluster.startupNodes, names)
      const b = await clusterInstance(t, cluster.startupNodes, names, { client: true })
      for (const name of names) {
        const ids = [await (a.channels.get(name)?.publish('one') as Promise<string>), await (a.channels.get(name)?.publish('two') as Promise<string>)]
        const client = await open(`${b.origin}/comet/${name}?transport=poll&since=3600000`)
        await client.ended
        t.same(replayWithControl(client.body(), 'cb'), [
          ['message', 'one', ids[0]],
          ['message', 'two', ids[1]],
          ['control', 'reconnect', { delay: 0 }]
        ], name)
      }
    })
  })
}
