// One clock per heartbeat period beats every idle stream: a stream that wrote nothing for a
// whole period (four ticks) is asked for a beat, so none stays silent longer than its period.
import t from 'tap'
import { HeartbeatClock, type Beating } from '../lib/heartbeat.js'

/** A stream that records the ticks it was given, and beats (resets) after `ticksPerBeat` of them. */
function fakeStream (): Beating & { beats: number, silent: number } {
  return {
    beats: 0,
    silent: 0,
    idleTick (ticksPerBeat) {
      if (++this.silent >= ticksPerBeat) {
        this.beats++
        this.silent = 0
      }
    }
  }
}

/** The interval delays armed while `run` runs. */
function intervalsArmed (run: () => void): number[] {
  const delays: number[] = []
  const original = globalThis.setInterval
  globalThis.setInterval = function (this: unknown, ...args: Parameters<typeof original>) {
    delays.push(args[1] ?? 0)
    return original.apply(this, args)
  } as typeof original
  try {
    run()
  } finally {
    globalThis.setInterval = original
  }
  return delays
}

t.test('streams with the same period share one clock and one timer', async t => {
  const a = fakeStream()
  const b = fakeStream()
  const clock = HeartbeatClock.of(20000)
  t.equal(HeartbeatClock.of(20000), clock, 'the same clock for the same period')
  t.not(HeartbeatClock.of(30000), clock, 'another clock for another period')
  const delays = intervalsArmed(() => {
    clock.add(a)
    clock.add(b)
  })
  t.same(delays, [5000], 'one timer, ticking every quarter period')
  for (let i = 0; i < 4; i++) clock.tick()
  t.same([a.beats, b.beats], [1, 1], 'four silent ticks: one beat each')
  clock.delete(a)
  clock.delete(b)
  t.not(HeartbeatClock.of(20000), clock, 'a clock without streams is stopped and let go')
})

t.test('a beat never comes later than the period, whatever its length', async t => {
  for (const [period, tickMs, ticksPerBeat] of [[30, 7, 4], [4, 1, 4], [3, 1, 3], [1, 1, 1]]) {
    const stream = fakeStream()
    const clock = HeartbeatClock.of(period)
    t.same(intervalsArmed(() => clock.add(stream)), [tickMs], `${period} ms: ticks of ${tickMs} ms`)
    for (let i = 0; i < ticksPerBeat - 1; i++) clock.tick()
    t.equal(stream.beats, 0, `no beat after ${ticksPerBeat - 1} ticks`)
    clock.tick()
    t.equal(stream.beats, 1, `a beat after ${ticksPerBeat} ticks (${ticksPerBeat * tickMs} ms, at most ${period})`)
    clock.delete(stream)
  }
})

t.test('a stream that leaves is not ticked again', async t => {
  const stays = fakeStream()
  const leaves = fakeStream()
  const clock = HeartbeatClock.of(1000)
  clock.add(stays)
  clock.add(leaves)
  clock.tick()
  clock.delete(leaves)
  clock.tick()
  t.same([stays.silent, leaves.silent], [2, 1])
  clock.delete(stays)
})
