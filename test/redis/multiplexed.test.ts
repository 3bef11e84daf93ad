// A multiplexed stream of channels shared through Redis: it resumes on another instance with,
// for every key, exactly what it missed, then live, each once and in order; position() read on
// any instance is a cursor that any instance honours.
import t, { type Test } from 'tap'
import { build, listen, open, replayWithControl } from '../helpers.js'
import { useRedis, type RedisServer } from './redis-server.js'
import { loadRedisBroker } from './setup.js'
import type { CometHistoryChannel } from '../../types/index.js'

const KEYS = ['a', 'b', 'c']

async function multiplexed (t: Test, redis: RedisServer): Promise<{ url: string, rooms: Record<string, CometHistoryChannel<string>> }> {
  const { cometRedis } = loadRedisBroker()
  const { app } = await build(t, { padding: 0, maxBytes: Infinity, broker: cometRedis({ url: redis.url }) })
  const rooms = Object.fromEntries(KEYS.map(key => [key, app.comet.channel<string>({ name: `room-${key}`, history: 100 })]))
  app.get('/comet', (request, reply) => reply.comet(rooms, 'cb'))
  return { url: `${await listen(app)}/comet`, rooms }
}

const cursor = (ids: Record<string, string>): string => `?lastEventId=${encodeURIComponent(JSON.stringify(ids))}`

function ofKey (calls: unknown[][], key: string): unknown[][] {
  return calls.filter(call => call[0] === 'message' && call[3] === key).map(call => [call[1], call[2]])
}

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())

  t.test('a multiplexed stream resumes on the other instance, every key exactly once, in order', async t => {
    const a = await multiplexed(t, redis)
    const b = await multiplexed(t, redis)
    const start: Record<string, string> = {}
    for (const key of KEYS) start[key] = await a.rooms[key].position()
    const first = await open(a.url + cursor(start))
    const seen: Record<string, string[]> = {}
    for (const key of KEYS) seen[key] = [await a.rooms[key].publish(`${key}1`), await b.rooms[key].publish(`${key}2`)]
    for (const key of KEYS) await first.waitFor(seen[key][1])
    first.req.destroy()
    // Each key a different distance behind: c saw only its first message.
    const missed: Record<string, Array<[string, string]>> = { a: [], b: [], c: [['c2', seen.c[1]]] }
    for (const key of KEYS) {
      for (let n = 3; n <= 5; n++) missed[key].push([`${key}${n}`, await (n % 2 === 0 ? a : b).rooms[key].publish(`${key}${n}`)])
    }
    const second = await open(b.url + cursor({ a: seen.a[1], b: seen.b[1], c: seen.c[0] }))
    for (const key of KEYS) await second.waitFor(missed[key].at(-1)?.[1] as string)
    const live = await a.rooms.b.publish('b-live')
    await second.waitFor(live)
    second.req.destroy()
    const calls = replayWithControl(second.body(), 'cb')
    t.same(calls.filter(call => call[0] === 'control'), [], 'no reset')
    for (const key of KEYS) {
      t.same(ofKey(calls, key), key === 'b' ? [...missed.b, ['b-live', live]] : missed[key], `${key}: what it missed, once, in order`)
    }
  })

  t.test('position() on an empty shared channel is a cursor that replays from its first message, on any instance', async t => {
    const a = await multiplexed(t, redis)
    const b = await multiplexed(t, redis)
    const empty = await a.rooms.a.position()
    t.match(empty, /-0$/)
    t.equal(await b.rooms.a.position(), empty, 'the same position on every instance')
    const ids = [await a.rooms.a.publish('one'), await b.rooms.a.publish('two')]
    t.equal(await a.rooms.a.position(), ids[1])
    const client = await open(b.url + cursor({ a: empty }))
    await client.waitFor(ids[1])
    client.req.destroy()
    t.same(ofKey(replayWithControl(client.body(), 'cb'), 'a'), [['one', ids[0]], ['two', ids[1]]])
  })
}
