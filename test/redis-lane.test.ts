// One connection's commands in flight (lib/redis/lane.ts), on a stand-in connection whose answers
// the test gives: a bound that fails publishes at once and makes reads wait their turn (urgent
// ones first), and a silent connection dropped once. The Redis tests (test/redis/) cover the
// same class against a real server (hung-redis.test.ts, resume-storm.test.ts).
import t from 'tap'
import type { Redis } from 'ioredis'
import { deferred, turns, type Deferred } from './helpers.js'
import { RedisLane } from '../lib/redis/lane.js'

function lane (max: number, timeout = 60_000): { lane: RedisLane, connection: { status: string, disconnects: number }, lost: Error[], answers: Array<Deferred<string>> } {
  const connection = {
    status: 'ready',
    disconnects: 0,
    // ioredis sees its socket close, and makes the connection again.
    stream: { destroy: () => { connection.disconnects++; connection.status = 'reconnecting' } }
  }
  const lost: Error[] = []
  return { lane: new RedisLane(connection as unknown as Redis, max, timeout, err => lost.push(err)), connection, lost, answers: [] }
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
  const first = publishes.send(command(answers, 'a', sent))
  const second = publishes.send(command(answers, 'b', sent))
  await t.rejects(publishes.send(command(answers, 'c', sent)), { message: '2 commands already wait for Redis\'s answer' })
  t.same(sent, ['a', 'b'], 'the third was never sent')
  answers[0].resolve('A')
  t.equal(await first, 'A')
  const third = publishes.send(command(answers, 'd', sent))
  answers[1].resolve('B')
  answers[2].reject(new Error('refused'))
  t.equal(await second, 'B')
  await t.rejects(third, { message: 'refused' }, 'a failed command frees its slot too')
  const fourth = publishes.send(command(answers, 'e', sent))
  answers[3].resolve('E')
  t.equal(await fourth, 'E')
})

t.test('past the bound, queue() waits its turn, urgent ones first, and only then is sent', async t => {
  const { lane: reads, answers } = lane(1)
  const sent: string[] = []
  const results = [reads.queue(command(answers, 'a', sent)), reads.queue(command(answers, 'b', sent)),
    reads.queue(command(answers, 'c', sent)), reads.queue(command(answers, 'urgent', sent), true)]
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
  const slow = publishes.send(command(answers, 'a', sent))
  const quick = publishes.send(command(answers, 'b', sent))
  answers[1].resolve('B')
  t.equal(await quick, 'B')
  await t.rejects(slow, { message: 'Redis command timed out: no answer within 20 ms' })
  t.equal(connection.disconnects, 0, 'not made again')
  t.same(lost, [])
})

t.test('a command with no answer in time: the connection is taken for lost and made again, once', async t => {
  const { lane: publishes, connection, lost, answers } = lane(5, 1)
  const sent: string[] = []
  const pending = [publishes.send(command(answers, 'a', sent)), publishes.send(command(answers, 'b', sent))]
  for (const result of pending) await t.rejects(result, { message: 'Redis command timed out: no answer within 1 ms' })
  t.equal(connection.disconnects, 1, 'made again once, not once per command')
  t.equal(lost.length, 1)
  // The closed connection fails what was in flight on it: the slots come back.
  for (const answer of answers) answer.reject(new Error('Connection is closed.'))
  await turns(2)
  connection.status = 'ready'
  const next = publishes.send(command(answers, 'c', sent))
  answers[2].resolve('C')
  t.equal(await next, 'C')
})

t.test('a silent cluster client is closed and connects again whole: which node went silent is not known', async t => {
  const cluster = { isCluster: true, status: 'ready', reconnects: 0, disconnect (reconnect: boolean) { if (reconnect) this.reconnects++ } }
  const lost: Error[] = []
  const publishes = new RedisLane(cluster as unknown as Redis, 5, 1, err => lost.push(err))
  await t.rejects(publishes.send(() => new Promise(() => {})), { message: 'Redis command timed out: no answer within 1 ms' })
  t.equal(cluster.reconnects, 1)
  t.equal(lost.length, 1)
})
