// A history resumes a client with no id from a time: `since` milliseconds ago, by the history's own
// clock. It replays from the first message stored at or after that moment; a message in the window
// that was dropped (overwritten or aged out) makes it a reset, never a silent gap. The clock is
// injected: these tests are about which messages fall in the window, not about waiting.
import t from 'tap'
import { History } from '../lib/history.js'

function historyAt (size: number, ttl = 0): { history: History, clock: { now: number } } {
  const clock = { now: 1000 }
  return { history: new History(size, ttl, () => clock.now), clock }
}

t.test('since replays from the first message stored at or after now - since', async t => {
  const { history, clock } = historyAt(10)
  for (const at of [1000, 1100, 1200, 1300]) {
    clock.now = at
    history.append(`m${at}`)
  }
  clock.now = 1500
  t.same(history.resume(undefined, 300), { replayFrom: 3 }, 'stored at 1200 is exactly 300 ms ago: in the window')
  t.same(history.resume(undefined, 299), { replayFrom: 4 }, 'one millisecond less leaves it out')
  t.same(history.resume(undefined, 500), { replayFrom: 1 }, 'a window over everything held replays all of it')
  t.same(history.resume(undefined, 100000), { replayFrom: 1 }, 'a window from before the first message too')
})

t.test('no message in the window: live, nothing replayed', async t => {
  const { history, clock } = historyAt(10)
  history.append('old')
  clock.now = 2000
  t.same(history.resume(undefined, 999), { replayFrom: 2 })
  t.same(history.resume(undefined, 0), { replayFrom: 2 }, 'since=0')
  t.same(historyAt(10).history.resume(undefined, 5000), { replayFrom: 1 }, 'an empty history')
})

t.test('an id wins over since; without either, live', async t => {
  const { history, clock } = historyAt(10)
  const first = history.idOf(history.append('a'))
  history.append('b')
  clock.now = 1100
  t.same(history.resume(first, 100000), { replayFrom: 2 }, 'an id of ours')
  t.same(history.resume(null, 100000), { reset: true }, 'a value that is none of ours')
  t.same(history.resume(undefined), { replayFrom: 3 }, 'no id, no since')
})

t.test('a message in the window that the history no longer holds makes it a reset', async t => {
  const { history, clock } = historyAt(3)
  for (let n = 1; n <= 5; n++) {
    clock.now = 1000 + n * 100 // 1100 … 1500; 1100 and 1200 overwritten
    history.append(`m${n}`)
  }
  clock.now = 1600
  t.same(history.resume(undefined, 450), { reset: true }, 'the window starts at 1150: the message of 1200 is gone')
  t.same(history.resume(undefined, 400), { reset: true }, 'at 1200 exactly: still in the window')
  t.same(history.resume(undefined, 399), { replayFrom: 3 }, 'from 1201: everything in the window is held')
  t.same(history.resume(undefined, 350), { replayFrom: 3 }, 'the window starts between the dropped and the oldest held')
})

t.test('a message aged out (historyTtl) within the window is a reset; one aged out before it is not', async t => {
  const { history, clock } = historyAt(10, 500)
  history.append('aging') // at 1000
  clock.now = 1400
  history.append('kept')
  clock.now = 1600 // 'aging' is 600 ms old: gone
  t.same(history.resume(undefined, 700), { reset: true }, 'the window reaches back to 900')
  t.same(history.resume(undefined, 500), { replayFrom: 2 }, 'the window starts at 1100, after it')
})

t.test('times are kept for as many slots as the history has, however many messages came', async t => {
  const { history, clock } = historyAt(40)
  for (let n = 1; n <= 100; n++) {
    clock.now = 1000 + n
    history.append(`m${n}`)
  }
  t.equal(history.oldest, 61)
  for (const seq of [61, 62, 80, 99, 100]) {
    t.same(history.resume(undefined, clock.now - (1000 + seq)), { replayFrom: seq }, `from ${seq}`)
  }
  t.same(history.resume(undefined, 41), { reset: true }, 'the window reaches the last one overwritten')
})
