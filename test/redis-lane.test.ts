// One connection's commands in flight (lib/redis/lane.ts), on a stand-in connection whose answers
// the test gives: a bound that fails publishes at once and makes reads wait their turn (urgent
// ones first), and a silent connection dropped once; on a stand-in cluster client, a bound and a
// silence of each primary's own. The Redis tests (test/redis/) cover the
// same class against a real server (hung-redis.test.ts, resume-storm.test.ts).
import t from 'tap'
import type { Redis } from 'ioredis'
import { deferred, turns, type Deferred } from './helpers.js'
import { RedisLane } from '../lib/redis/lane.js'
import { slotOf } from '../lib/redis/slot.js'

function lane (max: number, timeout = 60_000, onLost = () => {}): { lane: RedisLane, connection: { status: string, disconnects: number }, lost: Error[], answers: Array<Deferred<string>> } {
  const connection = {
    status: 'ready',
    disconnects: 0,
    // ioredis sees its socket close, and makes the connection again.
    stream: { destroy: () => { connection.disconnects++; connection.status = 'reconnecting' } }
  }
  const lost: Error[] = []
  return { lane: new RedisLane(connection as unknown as Redis, max, timeout, err => { lost.push(err); onLost() }), connection, lost, answers: [] }
}

const command = (answers: Array<Deferred<string>>, name: string, sent: string[]) => (): Promise<string> => {
  sent.push(name)
  const answer = deferred<string>()
  answers.push(answer)
  return answer.promise
}

t.test('past the bound, send() fails at once without sending; a slot comes back when Redis answers', async t => {
  const { lane: publishes, answers } = lane(2)
  const sent: string[] = []
  const first = publishes.send('k', command(answers, 'a', sent))
  const second = publishes.send('k', command(answers, 'b', sent))
  await t.rejects(publishes.send('k', command(answers, 'c', sent)), { message: '2 commands already wait for Redis\'s answer' })
  t.same(sent, ['a', 'b'], 'the third was never sent')
  answers[0].resolve('A')
  t.equal(await first, 'A')
  const third = publishes.send('k', command(answers, 'd', sent))
  answers[1].resolve('B')
  answers[2].reject(new Error('refused'))
  t.equal(await second, 'B')
  await t.rejects(third, { message: 'refused' }, 'a failed command frees its slot too')
  const fourth = publishes.send('k', command(answers, 'e', sent))
  answers[3].resolve('E')
  t.equal(await fourth, 'E')
})

t.test('past the bound, queue() waits its turn, urgent ones first, and only then is sent', async t => {
  const { lane: reads, answers } = lane(1)
  const sent: string[] = []
  const results = [reads.queue('k', command(answers, 'a', sent)), reads.queue('k', command(answers, 'b', sent)),
    reads.queue('k', command(answers, 'c', sent)), reads.queue('k', command(answers, 'urgent', sent), true)]
  await turns(3)
  t.same(sent, ['a'])
  for (let n = 0; n < 4; n++) {
    answers[n].resolve(String(n))
    await turns(3)
  }
  t.same(sent, ['a', 'urgent', 'b', 'c'])
  t.same(await Promise.all(results), ['0', '2', '3', '1'])
})

t.test('a command with no answer in time while others are answered: the connection is slow, and kept', async t => {
  const { lane: publishes, connection, lost, answers } = lane(5, 20)
  const sent: string[] = []
  const slow = publishes.send('k', command(answers, 'a', sent))
  const quick = publishes.send('k', command(answers, 'b', sent))
  answers[1].resolve('B')
  t.equal(await quick, 'B')
  await t.rejects(slow, { message: 'Redis command timed out: no answer within 20 ms' })
  t.equal(connection.disconnects, 0, 'not made again')
  t.same(lost, [])
})

t.test('a command with no answer in time: the connection is taken for lost and made again, once', async t => {
  const { lane: publishes, connection, lost, answers } = lane(5, 1)
  const sent: string[] = []
  const pending = [publishes.send('k', command(answers, 'a', sent)), publishes.send('k', command(answers, 'b', sent))]
  for (const result of pending) await t.rejects(result, { message: 'Redis command timed out: no answer within 1 ms' })
  t.equal(connection.disconnects, 1, 'made again once, not once per command')
  t.equal(lost.length, 1)
  // The closed connection fails what was in flight on it: the slots come back.
  for (const answer of answers) answer.reject(new Error('Connection is closed.'))
  await turns(2)
  connection.status = 'ready'
  const next = publishes.send('k', command(answers, 'c', sent))
  answers[2].resolve('C')
  t.equal(await next, 'C')
})

t.test('a ping asks the server, unless its bound is full or it is down; one with no answer is dropped', async t => {
  let dropped = deferred<void>()
  const { lane: publishes, connection, lost, answers } = lane(1, 1, () => dropped.resolve())
  const pings: Array<Deferred<string>> = []
  Object.assign(connection, { ping: () => { const answer = deferred<string>(); pings.push(answer); return answer.promise } })
  publishes.ping()
  t.equal(pings.length, 1)
  pings[0].resolve('PONG')
  await turns(2)
  const sent: string[] = []
  const pending = publishes.send('k', command(answers, 'a', sent))
  publishes.ping()
  t.equal(pings.length, 1, 'not asked while its bound is full')
  await t.rejects(pending)
  await dropped.promise
  t.equal(connection.disconnects, 1)
  answers[0].reject(new Error('Connection is closed.'))
  await turns(2)
  publishes.ping()
  t.equal(pings.length, 1, 'not asked while it is being made again')
  connection.status = 'ready'
  dropped = deferred<void>()
  publishes.ping()
  t.equal(pings.length, 2)
  // Never answered: dropped, as for a command.
  await dropped.promise
  t.equal(connection.disconnects, 2)
  t.equal(lost.length, 2)
})

/** A stand-in cluster client: its nodes by "host:port", and a slot table where `a` lives on the first and `b` on the second. */
function cluster (): { client: { isCluster: true, slots: string[][], nodes: (role?: string) => unknown[] }, nodes: Array<{ name: string, status: string, disconnects: number, pings: number }> } {
  const nodes = [1, 2, 3].map(port => {
    const node = {
      name: `10.0.0.${port}:6379`,
      options: { host: `10.0.0.${port}`, port: 6379 },
      status: 'ready',
      role: port === 3 ? 'slave' : 'master',
      disconnects: 0,
      pings: 0,
      // ioredis forgets a cluster node whose connection closed.
      stream: { destroy: () => { node.disconnects++; node.status = 'end'; nodes.splice(nodes.indexOf(node), 1) } },
      ping: () => { node.pings++; return new Promise(() => {}) }
    }
    return node
  })
  const all = [...nodes]
  const slots: string[][] = []
  slots[slotOf('a')] = [all[0].name, all[2].name]
  slots[slotOf('b')] = [all[1].name]
  return { client: { isCluster: true, slots, nodes: (role = 'all') => nodes.filter(node => role === 'all' || node.role === role) }, nodes: all }
}

t.test('on a cluster, each primary has a bound of its own: the commands a node holds never hold the other shards\'', async t => {
  const { client } = cluster()
  const publishes = new RedisLane(client as unknown as Redis, 1, 60_000, () => {})
  const answers: Array<Deferred<string>> = []
  const sent: string[] = []
  const heldOnA = publishes.send('{a}:meta', command(answers, 'a1', sent))
  await t.rejects(publishes.send('{a}:log', command(answers, 'a2', sent)), { message: '1 commands already wait for Redis\'s answer' }, 'the same slot\'s node is full')
  const onB = publishes.send('{b}:meta', command(answers, 'b1', sent))
  const readOnB = publishes.queue('b', command(answers, 'b2', sent))
  await turns(3)
  t.same(sent, ['a1', 'b1'], 'the other shard\'s command is sent at once; a read waits for its own node only')
  answers[1].resolve('B1')
  t.equal(await onB, 'B1')
  await turns(3)
  t.same(sent, ['a1', 'b1', 'b2'])
  answers[2].resolve('B2')
  t.equal(await readOnB, 'B2')
  answers[0].resolve('A1')
  t.equal(await heldOnA, 'A1')
})

t.test('before a cluster client knows its slots, its commands share one bound', async t => {
  const { client } = cluster()
  client.slots.length = 0
  const publishes = new RedisLane(client as unknown as Redis, 1, 60_000, () => {})
  const answers: Array<Deferred<string>> = []
  const sent: string[] = []
  const first = publishes.send('{a}:meta', command(answers, 'a', sent))
  await t.rejects(publishes.send('{b}:meta', command(answers, 'b', sent)), { message: '1 commands already wait for Redis\'s answer' })
  answers[0].resolve('A')
  t.equal(await first, 'A')
})

t.test('on a cluster, only a silent node\'s connection is dropped, once; an answer from another node does not make it heard', async t => {
  const { client, nodes } = cluster()
  const lost: Error[] = []
  const publishes = new RedisLane(client as unknown as Redis, 5, 1, err => lost.push(err))
  const answers: Array<Deferred<string>> = []
  const sent: string[] = []
  const silent = [publishes.send('{a}:meta', command(answers, 'a1', sent)), publishes.send('{a}:log', command(answers, 'a2', sent))]
  const onB = publishes.send('{b}:meta', command(answers, 'b1', sent))
  answers[2].resolve('B1')
  t.equal(await onB, 'B1')
  for (const result of silent) await t.rejects(result, { message: 'Redis command timed out: no answer within 1 ms' })
  t.same(nodes.map(node => node.disconnects), [1, 0, 0], 'the first node\'s connection alone, once')
  t.equal(lost.length, 1)
})

t.test('on a cluster, a ping asks each primary on its own connection, and a silent one is dropped alone', async t => {
  const { client, nodes } = cluster()
  const dropped = deferred<Error>()
  const publishes = new RedisLane(client as unknown as Redis, 5, 1, err => dropped.resolve(err))
  nodes[1].status = 'connecting'
  publishes.ping()
  t.same(nodes.map(node => node.pings), [1, 0, 0], 'primaries that are ready, not replicas')
  t.match(await dropped.promise, { message: 'Redis command timed out: no answer within 1 ms' })
  t.same(nodes.map(node => node.disconnects), [1, 0, 0])
})
