// A primary of the cluster killed (SIGKILL) while every channel publishes, after its replica fell
// behind (SIGSTOP, its link cut: the last acknowledged messages of its shard never reach it). The replica takes
// over without them, and would hand out their numbers again to other messages: every client of
// every channel of that shard gets each acknowledged message once, in order, and is told that
// the history broke (a reset: an id from before it no longer resumes), never a silent gap; the
// channels of the other shards go on undisturbed. Afterwards the positions are verified as on one
// server (failover.test.ts): no id names two messages, and a client resuming on the shard from an
// id of before the failover, on a channel followed through it or not, gets a reset, never a partial
// replay, and one asking for a window (?since=) that reaches the lost messages gets a reset; on the
// other shards a resume gets exactly what it missed.
import t, { type Test } from 'tap'
import { open, replayWithControl } from '../helpers.js'
import { againstAcked, namesOnEveryShard, useCluster } from './cluster.js'
import { after, clusterInstance, until, type ClusterInstance } from './setup.js'

const epochOf = (id: string): string => id.split('-')[0]

/**
 * A client resuming on `instance` (a or b: `which`) from `from`, an id of before the failover on its shard: a reset
 * first (to the new epoch), then messages after it in order, up to one published now.
 */
async function resumeIsReset (t: Test, instance: ClusterInstance, which: string, name: string, from: string, epoch: string): Promise<void> {
  const client = await open(`${instance.origin}/comet/${name}${after(from)}`)
  await client.waitFor('"reset"')
  const later = await (instance.channels.get(name)?.publish(`after ${from}`) as Promise<string>)
  await client.waitFor(later)
  client.req.destroy()
  const [first, ...rest] = replayWithControl(client.body(), 'cb') as Array<[string, unknown, string]>
  const label = `${name} from ${from} on instance ${which}`
  t.match(first, ['control', 'reset', { lastEventId: from, id: new RegExp(`^${epoch}-`) }], `${label}: a reset first`)
  const at = Number((first[2] as unknown as { id: string }).id.split('-')[1])
  t.same(rest, rest.map((entry, n) => ['message', entry[1], `${epoch}-${at + n + 1}`]), `${label}: then messages after the reset, in order`)
  t.equal(rest.at(-1)?.[1], `after ${from}`, `${label}: up to the one published now`)
}

/** What a channel's publisher did: the values whose publish was acknowledged, with their ids, and those that failed. */
interface Published {
  acked: Array<[value: string, id: string]>
  failed: string[]
}

const startCluster = useCluster(t)
if (startCluster !== undefined) {
  t.test('a primary killed while publishing, its replica behind: exactly once or a reset on its shard, the others undisturbed', async t => {
    const cluster = await startCluster(t)
    const shards = await cluster.shards()
    const byShard = await namesOnEveryShard(cluster, shards, 3)
    const names = byShard.flat()
    const [victim] = shards
    const replica = victim.replicas[0]
    // A channel of the victim's shard that no instance follows: its fork is found only by its ids.
    const [[quiet]] = await namesOnEveryShard(cluster, [victim], 1, 'quiet')
    const instances = [await clusterInstance(t, cluster.startupNodes, [...names, quiet]), await clusterInstance(t, cluster.startupNodes, [...names, quiet], { client: true })]
    const quietIds: string[] = []
    const publishQuiet = async (value: string): Promise<string> => await (instances[0].channels.get(quiet)?.publish(value) as Promise<string>)
    for (let n = 0; n < 5; n++) quietIds.push(await publishQuiet(`quiet/${n}`))
    const starts = await Promise.all(names.map(name => instances[0].channels.get(name)?.publish('start') as Promise<string>))
    const clients = await Promise.all(names.map(async (name, n) => await Promise.all(instances.map(instance => open(`${instance.origin}/comet/${name}${after(starts[n])}`)))))
    const published: Published[] = names.map(() => ({ acked: [], failed: [] }))

    // Each channel publishes in turn through both instances, a failed publish tried again after a
    // pause (a dead primary refuses at once), until `until` says stop.
    let phase = 'before'
    const publishing = (stop: () => boolean): Promise<void[]> => Promise.all(names.map(async (name, n) => {
      for (let m = 0; !stop(); m++) {
        const value = `${name}/${phase}/${published[n].acked.length + published[n].failed.length}`
        try {
          published[n].acked.push([value, await (instances[m % 2].channels.get(name)?.publish(value) as Promise<string>)])
        } catch {
          published[n].failed.push(value)
          await new Promise(resolve => setTimeout(resolve, 20))
        }
      }
    }))
    const count = (target: number) => () => published.every(channel => channel.acked.length >= target)

    await publishing(count(5))
    t.equal(await victim.primary.cli.call('WAIT', '1', '5000'), 1, 'the replica has everything so far')
    // The replica stops, and its link is cut: what the primary stores from now on only the
    // primary has (a stopped process would still find in its socket what was sent before).
    replica.hang()
    await victim.primary.cli.call('CLIENT', 'KILL', 'TYPE', 'replica')
    phase = 'lagged'
    for (let n = 5; n < 10; n++) quietIds.push(await publishQuiet(`quiet/${n}`))
    await publishing(count(10))
    // Acknowledged by the primary, delivered to every client, never received by its replica.
    await Promise.all(clients.flatMap((pair, n) => pair.map(client => client.waitFor(published[n].acked[9][1]))))
    const old = await victim.primary.cli.info('replication')
    const oldReplid = /master_replid:(\w+)/.exec(old)?.[1]
    const oldOffset = Number(/master_repl_offset:(\d+)/.exec(old)?.[1])

    phase = 'failover'
    let failedOver = false
    const traffic = publishing(() => failedOver && published.every(channel => channel.acked.length >= 20))
    await victim.primary.kill()
    replica.wake()
    await cluster.settled()
    failedOver = true
    await traffic
    await Promise.all(clients.flatMap((pair, n) => pair.map(client => client.waitFor(published[n].acked.at(-1)?.[1] as string))))

    const promoted = await replica.cli.info('replication')
    t.match(promoted, /role:master/, 'the replica took over')
    t.equal(/master_replid2:(\w+)/.exec(promoted)?.[1], oldReplid, 'from the history of the primary killed')
    t.ok(Number(/second_repl_offset:(\d+)/.exec(promoted)?.[1]) - 1 < oldOffset, 'without its last writes: it had fallen behind')

    for (const [n, name] of names.entries()) {
      const onVictim = byShard[0].includes(name)
      let resets = 0
      for (const [i, client] of clients[n].entries()) {
        client.req.destroy()
        // Connected all along, and each message the dead primary acknowledged reached it before the
        // kill: nothing may be missing, even where a reset says the history broke.
        const { problems, resets: told } = againstAcked(client, published[n].acked)
        t.same(problems, [], `${name} on instance ${'ab'[i]}: every acknowledged message once, in order, with its id`)
        resets += told
      }
      const ids = published[n].acked.map(([, id]) => id)
      t.equal(new Set(ids).size, ids.length, `${name}: no id names two messages`)
      if (onVictim) {
        t.ok(resets >= 2, `${name}: each client was told that the history broke (${resets} resets)`)
        const epoch = epochOf(ids.at(-1) as string)
        t.not(epoch, epochOf(starts[n]), `${name}: a new epoch after the failover`)
        // From an id the new primary never had, and from one it has under the retired epoch.
        for (const from of [ids[9], ids[2]]) {
          for (const [i, instance] of instances.entries()) await resumeIsReset(t, instance, 'ab'[i], name, from, epoch)
        }
      } else {
        t.equal(resets, 0, `${name}: no reset on another shard`)
        t.same(published[n].failed, [], `${name}: no publish failed on another shard`)
        const missed = await open(`${instances[1].origin}/comet/${name}${after(ids[9])}`)
        await missed.waitFor(ids.at(-1) as string)
        missed.req.destroy()
        t.same(replayWithControl(missed.body(), 'cb'), published[n].acked.slice(10).map(([value, id]) => ['message', value, id]),
          `${name}: a resume on another shard gets exactly what it missed`)
      }
    }

    // The channel nobody followed: a client with no id asking for the last hour (?since=) is
    // told the history broke, with an id of the new epoch, and given nothing of the old one.
    const since = await open(`${instances[1].origin}/comet/${quiet}?transport=poll&since=3600000`)
    await since.ended
    const sinceEntries = replayWithControl(since.body(), 'cb') as Array<[string, unknown, { id: string }]>
    t.same(sinceEntries.map(([kind, value]) => [kind, value]), [['control', 'reset'], ['control', 'reconnect']], `${quiet}: since=3600000 gets a reset, and no message`)
    // The promoted replica hands out new ids, and every old one resets.
    let next: string | undefined
    await until(async () => { next = await publishQuiet('quiet/next').catch(() => undefined); return next !== undefined })
    const quietEpoch = epochOf(next as string)
    t.not(quietEpoch, epochOf(quietIds[0]), `${quiet}: a new epoch, no id of the old primary names a new message`)
    t.equal(epochOf(sinceEntries[0][2].id), quietEpoch, `${quiet}: the reset of since was to the new epoch`)
    for (const from of [quietIds[9], quietIds[7], quietIds[2]]) {
      for (const [i, instance] of instances.entries()) await resumeIsReset(t, instance, 'ab'[i], quiet, from, quietEpoch)
    }
  })
}
