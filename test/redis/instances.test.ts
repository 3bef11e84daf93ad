// Instances as they are deployed: separate processes running the built package, sharing one
// redis-server (test/redis/processes.ts). A message published on any of them reaches every one in
// one order with one id; a client resumes on any of them (after leaving another, or after its
// instance crashed) with exactly what it missed, or with a reset when the history no longer has it.
import t from 'tap'
import { replay, replayWithControl } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { epochOf, publish, seq, startInstances, subscribe } from './processes.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())

  t.test('a message published on any instance reaches every instance in one order, with one id', async t => {
    const servers = await startInstances(t, redis, 3)
    const start = await publish(servers[0], 'start')
    const clients = await Promise.all(servers.map(server => subscribe(server, start)))
    // Published through all three at once: Redis decides one order, and every instance follows it.
    const ids = await Promise.all(Array.from({ length: 30 }, (_, n) => publish(servers[n % 3], n)))
    const inOrder = ids.map((id, n) => [n, id] as [number, string]).sort(([, x], [, y]) => seq(x) - seq(y))
    t.same(inOrder.map(([, id]) => seq(id)), Array.from({ length: 30 }, (_, n) => n + 2), 'numbered without gaps after start')
    t.ok(ids.every(id => epochOf(id) === epochOf(start)), 'in one epoch')
    const last = inOrder[29][1]
    await Promise.all(clients.map(client => client.waitFor(last)))
    for (const [n, client] of clients.entries()) {
      client.req.destroy()
      t.same(replay(client.body(), 'cb'), inOrder, `instance ${n}: every message once, in the log's order, with the id its publish() gave`)
    }
  })

  t.test('a client that leaves one instance resumes on another with exactly what it missed, then live', async t => {
    const [a, b] = await startInstances(t, redis, 2)
    const start = await publish(a, 0)
    const first = await subscribe(a, start)
    const seen = [await publish(a, 1), await publish(b, 2)]
    await first.waitFor(seen[1])
    first.req.destroy()
    const missed = [await publish(b, 3), await publish(a, 4), await publish(b, 5)]
    const second = await subscribe(b, seen[1])
    await second.waitFor(missed[2])
    const live = await publish(a, 6)
    await second.waitFor(live)
    second.req.destroy()
    t.same(replay(first.body(), 'cb'), [[1, seen[0]], [2, seen[1]]])
    t.same(replay(second.body(), 'cb'), [[3, missed[0]], [4, missed[1]], [5, missed[2]], [6, live]])
  })

  t.test('an instance that crashes: its client resumes on another with exactly what it missed, then live', async t => {
    const [a, b] = await startInstances(t, redis, 2)
    const start = await publish(b, 0)
    const client = await subscribe(a, start)
    const seen = await publish(b, 1)
    await client.waitFor(seen)
    await a.kill('SIGKILL')
    await t.rejects(client.ended, 'the stream broke off with its process')
    const missed = [await publish(b, 2), await publish(b, 3)]
    const resumed = await subscribe(b, seen)
    await resumed.waitFor(missed[1])
    const live = await publish(b, 4)
    await resumed.waitFor(live)
    resumed.req.destroy()
    t.same(replay(client.body(), 'cb'), [[1, seen]])
    t.same(replay(resumed.body(), 'cb'), [[2, missed[0]], [3, missed[1]], [4, live]])
  })

  t.test('resuming on another instance: the oldest id the history serves replays it all; one older gets a reset, then live', async t => {
    const [a, b] = await startInstances(t, redis, 2, { HISTORY: '3' })
    const start = await publish(a, 0)
    const client = await subscribe(a, start)
    const ids = [await publish(a, 1)]
    await client.waitFor(ids[0])
    client.req.destroy()
    for (let n = 2; n <= 6; n++) ids.push(await publish(n % 2 === 0 ? b : a, n)) // the log keeps 4, 5 and 6
    const edge = await subscribe(b, ids[2]) // had 3: the log holds all it missed
    await edge.waitFor(ids[5])
    const trimmed = await subscribe(b, ids[0]) // had 1: 2 and 3 are gone
    await trimmed.waitFor('"reset"')
    const live = await publish(a, 7)
    await Promise.all([edge.waitFor(live), trimmed.waitFor(live)])
    edge.req.destroy()
    trimmed.req.destroy()
    t.same(replayWithControl(edge.body(), 'cb'), [['message', 4, ids[3]], ['message', 5, ids[4]], ['message', 6, ids[5]], ['message', 7, live]])
    t.same(replayWithControl(trimmed.body(), 'cb'), [
      ['control', 'reset', { lastEventId: ids[0], id: ids[5] }],
      ['message', 7, live]
    ], 'told what it lost and where it stands, then live')
  })
}
