// A failover to a replica that had not received the last writes (it stopped replicating before
// them, then was promoted with REPLICAOF NO ONE), with the channel followed by the instance and
// not: no id names two messages afterwards, and a client resuming from an id the new primary does
// not hold, or holds for another message, gets a reset, never a partial replay.
import t from 'tap'
import { open, replayWithControl } from '../helpers.js'
import { useRedis, type RedisServer } from './redis-server.js'
import { after, failoverProxy, instance, until } from './setup.js'

const primary = useRedis(t, { tcp: true })
const replica = primary === undefined ? undefined : useRedis(t) // missing, the file is skipped once
if (primary !== undefined && replica !== undefined) {
  t.beforeEach(async () => {
    await primary.cli.flushall()
    await replica.cli.replicaof('127.0.0.1', primary.port)
    await until(async () => (await replica.cli.info('replication')).includes('master_link_status:up'))
  })

  const epochOf = (id: string): string => id.split('-')[0]

  for (const followed of [false, true]) {
    t.test(`a lagging replica promoted, with the channel ${followed ? '' : 'not '}followed: new ids never name old messages, and resuming past what it holds is a reset`, async t => {
      const proxy = await failoverProxy(t, primary)
      const a = await instance(t, { url: proxy.url } as RedisServer)
      const ids: string[] = []
      for (let n = 1; n <= 10; n++) ids.push(await a.chat.publish(n))
      const steady = followed ? await open(a.url + after(ids[9])) : undefined
      await primary.cli.call('WAIT', 1, 0) // the replica has 1 to 10
      await replica.cli.replicaof('NO', 'ONE') // and stops there
      for (let n = 11; n <= 15; n++) ids.push(await a.chat.publish(n))
      await steady?.waitFor(ids[14])
      proxy.switchTo(replica) // the failover: every connection is made again, to the replica
      let next: string | undefined
      await until(async () => { next = await a.chat.publish('next').catch(() => undefined); return next !== undefined })
      const epoch = epochOf(next as string)
      t.not(epoch, epochOf(ids[0]), 'a new epoch: no id of the old primary names a new message')
      // Where a reset puts a client: in the new epoch, or at `-0`, the start of whatever epoch comes
      // (the instance read the retired log before 'next' made the new one: a CI run had it).
      const position = new RegExp(`^(${epoch}-\\d+|-0)$`)
      for (const from of [ids[14], ids[12], ids[7]]) {
        const client = await open(a.url + after(from))
        await client.waitFor('"reset"')
        const later = await a.chat.publish(`after ${from}`)
        await client.waitFor(later)
        client.req.destroy()
        const [first, ...rest] = replayWithControl(client.body(), 'cb') as Array<[string, unknown, string]>
        t.match(first, ['control', 'reset', { lastEventId: from, id: position }], `from ${from}: a reset first`)
        // Then the new primary's messages from where the reset put it ('next', if the instance had not heard it yet).
        const at = Number((first[2] as unknown as { id: string }).id.split('-')[1])
        t.same(rest, rest.map((entry, n) => ['message', entry[1], `${epoch}-${at + n + 1}`]), `from ${from}: then messages after the reset, in order`)
        t.equal(rest.at(-1)?.[1], `after ${from}`)
      }
      if (steady !== undefined) {
        steady.req.destroy()
        const entries = replayWithControl(steady.body(), 'cb')
        t.same(entries.slice(0, 5), ids.slice(10).map((id, n) => ['message', n + 11, id]))
        t.match(entries[5], ['control', 'reset', { lastEventId: ids[14], id: position }], 'the instance that followed it is told too')
        t.notOk(entries.slice(6).some(([kind]) => kind !== 'message'), 'then messages only')
      }
    })
  }
}
