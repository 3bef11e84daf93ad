// How an instance follows one channel in Redis (lib/redis/topic.ts), driven by a log reader whose
// answers the test gives, in the order it chooses: races that a real redis-server makes rare
// (pub/sub overtaking a read, a fork found by tokens, a retire that fails) happen here every time.
// The Redis tests (test/redis/) cover the same class against a real server.
import t from 'tap'
import { deferred, turns, type Deferred } from './helpers.js'
import { Topic, type LogPage, type LogReader, type TopicListener } from '../lib/redis/topic.js'
import { channelKeys } from '../lib/redis/scripts.js'

interface Read { epoch: string, after: number, answer: Deferred<LogPage>, answered?: boolean }

function follow (): { topic: Topic, reads: Read[], retires: Array<{ seq: number, token: string, done: Deferred }>, failures: Error[], events: unknown[] } {
  const reads: Read[] = []
  const retires: Array<{ seq: number, token: string, done: Deferred }> = []
  const failures: Error[] = []
  const events: unknown[] = []
  const reader: LogReader = {
    read (keys, epoch, after) {
      const answer = deferred<LogPage>()
      reads.push({ epoch, after, answer })
      return answer.promise
    },
    retireEpoch (keys, epoch, seq, token) {
      const done = deferred()
      retires.push({ seq, token, done })
      return done.promise
    },
    readFailed (err) { failures.push(err) }
  }
  const listener: TopicListener = {
    located: (epoch, last) => events.push(['position', epoch, last]),
    reset: (epoch, last) => events.push(['reset', epoch, last]),
    message: (epoch, seq, message) => events.push([epoch, seq, message])
  }
  return { topic: new Topic(channelKeys('comet:', 'chat'), reader, listener), reads, retires, failures, events }
}

/** Answers the oldest read still waiting, and lets the topic act on it. */
async function answer (reads: Read[], page: LogPage): Promise<void> {
  const read = reads.find(read => !read.answered)
  if (read === undefined) throw new Error('no read is waiting')
  read.answered = true
  read.answer.resolve(page)
  await turns(2)
}

/** Entries [seq, message, token] for seqs from..to, token `t<seq>`. */
const entries = (from: number, to: number, fork = ''): Array<[number, string, string]> =>
  Array.from({ length: to - from + 1 }, (_, n) => [from + n, `m${from + n}`, `${fork}t${from + n}`])

t.test('first read: the position; then live messages in order, each once', async t => {
  const { topic, reads, events } = follow()
  topic.catchUp()
  topic.catchUp() // coalesced: one read at a time
  t.equal(reads.length, 1)
  t.equal(reads[0].epoch, '', 'no epoch known yet')
  await answer(reads, { epoch: 'E', last: 3, lastToken: 't3' })
  t.equal(reads.length, 2, 'the second call reads again once the first is done')
  await answer(reads, { epoch: 'E', last: 3, lastToken: 't3', entries: [], tokenAtAfter: 't3' })
  topic.live('E', 4, 't3', 't4', 'm4')
  topic.live('E', 4, 't3', 't4', 'm4') // again: already delivered
  topic.live('E', 5, 't4', 't5', 'm5')
  t.same(events, [['position', 'E', 3], ['E', 4, 'm4'], ['E', 5, 'm5']])
  t.equal(reads.length, 2, 'nothing to read')
})

t.test('a gap, another epoch or a predecessor it did not deliver: the log is read instead', async t => {
  const cases: Array<[string, [string, number, string, string, string]]> = [['a gap', ['E', 6, 't5', 't6', 'm6']],
    ['another epoch', ['F', 1, '-', 'u1', 'x']], ['a fork', ['E', 5, 'other', 't5', 'm5']]]
  for (const [why, live] of cases) {
    const { topic, reads, events } = follow()
    topic.catchUp()
    await answer(reads, { epoch: 'E', last: 4, lastToken: 't4' })
    topic.live(...live)
    t.equal(reads.length, 2, why)
    t.same(events, [['position', 'E', 4]], `${why}: nothing delivered live`)
  }
})

t.test('a page of entries is delivered after a reset where the log starts past this instance', async t => {
  const { topic, reads, events } = follow()
  topic.catchUp()
  await answer(reads, { epoch: 'E', last: 2, lastToken: 't2' })
  topic.live('E', 9, 't8', 't9', 'm9') // a gap
  t.equal(reads[1].after, 2)
  await answer(reads, { epoch: 'E', last: 9, lastToken: 't9', entries: entries(7, 9) })
  t.same(events.slice(1), [['reset', 'E', 6], ['E', 7, 'm7'], ['E', 8, 'm8'], ['E', 9, 'm9']])
  topic.live('E', 10, 't9', 't10', 'm10')
  t.same(events.at(-1), ['E', 10, 'm10'], 'then live, following the last token read')
})

t.test('pub/sub that delivered the whole page while it was read is no gap: nothing lost, nothing twice', async t => {
  const { topic, reads, events } = follow()
  topic.catchUp()
  await answer(reads, { epoch: 'E', last: 0, lastToken: '-' })
  topic.live('E', 2, 't1', 't2', 'm2') // a gap: read after 0
  for (let seq = 1; seq <= 5; seq++) topic.live('E', seq, seq === 1 ? '-' : `t${seq - 1}`, `t${seq}`, `m${seq}`)
  // The page (entries 1 to 3 of 8) was read before those arrived; 6 to 8 are still to come.
  await answer(reads, { epoch: 'E', last: 8, lastToken: 't8', entries: entries(1, 3) })
  t.equal(reads.at(-1)?.after, 5, 'reads on from what pub/sub delivered')
  await answer(reads, { epoch: 'E', last: 8, lastToken: 't8', entries: entries(6, 8), tokenAtAfter: 't5' })
  t.same(events.slice(1), [1, 2, 3, 4, 5, 6, 7, 8].map(seq => ['E', seq, `m${seq}`]), 'no reset')
})

t.test('a log trimmed past this instance with nothing left after it: a reset to where it stands', async t => {
  const { topic, reads, events } = follow()
  topic.catchUp()
  await answer(reads, { epoch: 'E', last: 2, lastToken: 't2' })
  topic.catchUp()
  await answer(reads, { epoch: 'E', last: 9, lastToken: 't9', entries: [] })
  topic.live('E', 10, 't9', 't10', 'm10')
  t.same(events, [['position', 'E', 2], ['reset', 'E', 9], ['E', 10, 'm10']])
})

t.test('a new epoch is read from its start: a reset, then its messages', async t => {
  const { topic, reads, events } = follow()
  topic.catchUp()
  await answer(reads, { epoch: 'E', last: 5, lastToken: 't5' })
  topic.live('F', 1, '-', 'u1', 'x')
  await answer(reads, { epoch: 'F', last: 2, lastToken: 'u2' }) // not E: no entries
  topic.live('F', 1, '-', 'u1', 'x') // restarting: not delivered live
  t.equal(reads.at(-1)?.epoch, 'F')
  t.equal(reads.at(-1)?.after, 0)
  await answer(reads, { epoch: 'F', last: 2, lastToken: 'u2', entries: [[1, 'x', 'u1'], [2, 'y', 'u2']] })
  t.same(events.slice(1), [['reset', 'F', 0], ['F', 1, 'x'], ['F', 2, 'y']])
})

t.test('a log that went back in time, or forked, under one epoch is retired, then read again', async t => {
  const cases: Array<[string, LogPage]> = [
    ['back in time', { epoch: 'E', last: 3, lastToken: 't3', entries: [] }],
    ['forked', { epoch: 'E', last: 7, lastToken: 'xt7', entries: entries(6, 7, 'x'), tokenAtAfter: 'xt5' }]
  ]
  for (const [why, page] of cases) {
    const { topic, reads, retires, events } = follow()
    topic.catchUp()
    await answer(reads, { epoch: 'E', last: 5, lastToken: 't5' })
    topic.catchUp()
    await answer(reads, page)
    t.same(retires.map(({ seq, token }) => [seq, token]), [[5, 't5']], `${why}: retired at what this instance had`)
    t.equal(reads.length, 2, 'nothing read until it is retired')
    retires[0].done.resolve()
    await turns(2)
    await answer(reads, { epoch: 'G', last: 7, lastToken: 'g7' })
    await answer(reads, { epoch: 'G', last: 7, lastToken: 'g7', entries: [] })
    t.same(events, [['position', 'E', 5], ['reset', 'G', 7]], `${why}: nothing of the old epoch after 5`)
  }
})

t.test('a read or a retire that fails leaves the topic stale, for the reader to try again', async t => {
  const { topic, reads, retires, failures } = follow()
  topic.catchUp()
  reads[0].answered = true
  reads[0].answer.reject(new Error('no connection'))
  await turns(2)
  t.ok(topic.stale)
  t.same(failures.map(err => err.message), ['no connection'])
  topic.catchUp()
  t.notOk(topic.stale, 'reading again')
  await answer(reads, { epoch: 'E', last: 5, lastToken: 't5' })
  topic.catchUp()
  await answer(reads, { epoch: 'E', last: 1, lastToken: 't1', entries: [] })
  retires[0].done.reject(new Error('timed out'))
  await turns(2)
  t.ok(topic.stale)
  t.same(failures.map(err => err.message), ['no connection', 'timed out'])
})

t.test('a page that arrives once the topic is closed goes nowhere', async t => {
  const { topic, reads, events } = follow()
  topic.catchUp()
  topic.closed = true
  await answer(reads, { epoch: 'E', last: 5, lastToken: 't5' })
  t.same(events, [])
})
