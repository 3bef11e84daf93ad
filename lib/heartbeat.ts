// Heartbeats from one timer per period for all streams, instead of a Timeout per stream re-armed
// on every write: an idle stream costs a set entry and a counter, and a write only resets the
// counter (see BENCHMARKS.md, idle streams).
//
// The clock ticks every quarter period; a stream that wrote nothing for four ticks gets a beat.
// So a stream is never silent longer than its period (a proxy timeout it was chosen for holds),
// and an idle stream's beats come between three quarters of a period and a period apart.

/** What the clock sees of a stream: one tick without a write, which may call for a beat. */
export interface Beating {
  idleTick (ticksPerBeat: number): void
}

const TICKS_PER_PERIOD = 4

// One clock per period in use, shared by every plugin instance; a clock with no stream stops.
const clocks = new Map<number, HeartbeatClock>()

export class HeartbeatClock {
  readonly #period: number
  readonly #tickMs: number
  readonly #ticksPerBeat: number
  readonly #streams = new Set<Beating>()
  #timer: NodeJS.Timeout | undefined

  /** The clock for `period` ms (more than 0), made when first needed. */
  static of (period: number): HeartbeatClock {
    let clock = clocks.get(period)
    if (clock === undefined) {
      clock = new HeartbeatClock(period)
      clocks.set(period, clock)
    }
    return clock
  }

  private constructor (period: number) {
    this.#period = period
    // Timers count whole milliseconds: periods under four ticks use 1 ms ticks.
    this.#tickMs = Math.max(1, Math.floor(period / TICKS_PER_PERIOD))
    this.#ticksPerBeat = Math.floor(period / this.#tickMs)
  }

  add (stream: Beating): void {
    this.#streams.add(stream)
    this.#timer ??= setInterval(tick, this.#tickMs, this).unref()
  }

  delete (stream: Beating): void {
    this.#streams.delete(stream)
    if (this.#streams.size > 0) return
    clearInterval(this.#timer)
    this.#timer = undefined
    clocks.delete(this.#period)
  }

  tick (): void {
    for (const stream of this.#streams) stream.idleTick(this.#ticksPerBeat)
  }
}

function tick (clock: HeartbeatClock): void {
  clock.tick()
}
