// A primary of the cluster that hangs (SIGSTOP: its connections stay open, nothing is answered),
// shorter than cluster-node-timeout, so that no replica takes over. Publishes to the channels of
// its shard fail, and at most maxInFlight of them had been sent: only those can still run once it
// wakes. The other shards are not disturbed: their publishes succeed, even while the hung node
// holds maxInFlight publishes unanswered, and their subscribers get every message once, in order,
// while the node hangs. Once it wakes, its channels work again, and every client of them goes on
// with every acknowledged message once, in order (or is told of a reset), never a silent gap.
import t from 'tap'
import { logged, open } from '../helpers.js'
import { againstAcked, namesOnEveryShard, useCluster } from './cluster.js'
import { after, clusterInstance, keysOf, until } from './setup.js'

const COMMAND_TIMEOUT = 200
const MAX_IN_FLIGHT = 20
// Long enough that the hang (the failures, then the other shards' traffic) is over well before the
// cluster would fail the node over: this test is about a node that comes back by itself.
const NODE_TIMEOUT = 15_000

const startCluster = useCluster(t)
if (startCluster !== undefined) {
  t.test('a primary that hangs: its channels fail fast with at most maxInFlight sent, the other shards go on, and all resume once it wakes', async t => {
    const cluster = await startCluster(t, { nodeTimeout: NODE_TIMEOUT })
    const shards = await cluster.shards()
    const byShard = await namesOnEveryShard(cluster, shards, 2)
    const names = byShard.flat()
    const [hung] = shards
    const onHung = new Set(byShard[0])
    const a = await clusterInstance(t, cluster.startupNodes, names, { commandTimeout: COMMAND_TIMEOUT, maxInFlight: MAX_IN_FLIGHT })
    const b = await clusterInstance(t, cluster.startupNodes, names, { client: true })
    const publish = async (name: string, value: unknown): Promise<string> => await (a.channels.get(name)?.publish(value) as Promise<string>)
    // So short a commandTimeout may be over before each node's connection is ready.
    const starts: string[] = []
    for (const name of names) {
      let id: string | undefined
      await until(async () => { id = await publish(name, 'start').catch(() => undefined); return id !== undefined })
      starts.push(id as string)
    }
    const clients = await Promise.all(names.map((name, n) => Promise.all([a, b].map(instance => open(`${instance.origin}/comet/${name}${after(starts[n])}`)))))
    const acked = new Map<string, Array<[string, string]>>(names.map(name => [name, []]))

    hung.primary.hang()
    // The hung shard: a burst to each of its channels, maxInFlight of them sent and never answered.
    const payload = 'x'.repeat(1024)
    const burst = Promise.all(byShard[0].flatMap(name => Array.from({ length: 500 }, async (_, k) =>
      await publish(name, `${name}/hung/${k}/${payload}`).then(() => 'stored', (err: { code: string }) => err.code))))
    // The other shards, meanwhile (the hung node holds maxInFlight publishes): every one acknowledged.
    const others = names.filter(name => !onHung.has(name))
    const failedElsewhere: string[] = []
    await Promise.all([burst, ...others.map(async name => {
      for (let m = 0; m < 20; m++) {
        const value = `${name}/during/${m}`
        await publish(name, value).then(id => acked.get(name)?.push([value, id]), (err: { code: string, cause?: Error }) => failedElsewhere.push(`${value}: ${err.code} (${err.cause?.message ?? ''})`))
      }
    })])
    t.same([...new Set(await burst)], ['FST_COMET_PUBLISH_FAILED'], 'every publish to the hung shard fails')
    t.same(failedElsewhere, [], 'no publish to another shard failed while one node hung')
    // Still hung: every message of the other shards reaches both instances' clients.
    await Promise.all(others.filter(name => acked.get(name)?.length !== 0).map(name => Promise.all(clients[names.indexOf(name)].map(client => client.waitFor(acked.get(name)?.at(-1)?.[1] as string)))))
    // Still hung: a publish to its shard still fails.
    await t.rejects(publish(byShard[0][0], payload), { code: 'FST_COMET_PUBLISH_FAILED' }, 'still hung: a publish to its shard still fails')

    hung.primary.wake()
    for (const name of names) {
      let id: string | undefined
      await until(async () => { id = await publish(name, `${name}/after`).catch(() => undefined); return id !== undefined })
      acked.get(name)?.push([`${name}/after`, id as string])
    }
    await Promise.all(names.map((name, n) => Promise.all(clients[n].map(client => client.waitFor(acked.get(name)?.at(-1)?.[1] as string)))))
    for (const name of byShard[0]) {
      const seq = Number(await hung.primary.cli.hget(keysOf(name).meta, 'seq'))
      // start, at most maxInFlight of the failed publishes (over both channels), and the one after.
      t.ok(seq - 2 <= MAX_IN_FLIGHT, `${name}: Redis ran ${seq - 2} of the publishes reported failed (at most maxInFlight, ${MAX_IN_FLIGHT})`)
    }
    for (const [n, name] of names.entries()) {
      for (const [i, client] of clients[n].entries()) {
        client.req.destroy()
        t.same(againstAcked(client, acked.get(name) as Array<[string, string]>, true).problems, [], `${name} (${onHung.has(name) ? 'hung' : 'other'} shard) on instance ${'ab'[i]}: every acknowledged message once, in order`)
      }
    }
    t.ok(a.logs.some(line => line.msg.includes('lost the connection to Redis')), 'the publishing instance said it lost a connection')
    await logged(a.logs, line => line.msg.includes('connected to Redis again'))
  })
}
