// The last N messages of a channel, and the ids that point into them. An id is `EPOCH-SEQ`:
// SEQ counts the channel's messages from 1, EPOCH is 12 random hex digits per channel, so a restarted process
// or a new channel under the same name is never mistaken for the old sequence. With a ttl, a
// message is also dropped once it is that many milliseconds old. Every message keeps the time it
// was stored, so a client with no id can also resume from a time: "what was published in the last
// MS milliseconds". Pure but for the clock (monotonic, injectable for tests): no I/O.
import { randomBytes } from 'node:crypto'
import { wholeNumber } from './whole-number.js'

/** Where a reconnecting client resumes: replay from `from` on, or a reset when that is not possible. */
export type Resume = { replayFrom: number } | { reset: true }

function monotonic (): number {
  return performance.now()
}

export class History {
  readonly epoch = randomBytes(6).toString('hex')
  readonly #size: number
  /** Milliseconds a message is kept; 0 for no age limit. */
  readonly #ttl: number
  /** The messages' entries (encode.ts's messageEntry, id included), in a ring of `size` slots. */
  readonly #entries: Array<string | undefined> = []
  /**
   * When each slot's message was stored, by #now. A plain array of doubles (8 bytes each, unboxed)
   * grows as slots are first used: a channel that keeps few messages, or none yet, pays for those
   * only, without a typed array's fixed cost (about 250 bytes a channel).
   */
  readonly #storedAt: number[] = []
  /** When the newest message no longer held was stored; -Infinity while none was dropped. */
  #droppedAt = -Infinity
  readonly #now: () => number
  /** Sequence number of the newest message; 0 before the first. */
  #last = 0
  /** Sequence number of the oldest message still held (last + 1 when none is). */
  #oldest = 1

  constructor (size: number, ttl = 0, now = monotonic) {
    this.#size = size
    this.#ttl = ttl
    this.#now = now
  }

  get last (): number {
    return this.#last
  }

  /** Sequence number of the oldest message still held. */
  get oldest (): number {
    return this.#oldest
  }

  idOf (seq: number): string {
    return `${this.epoch}-${seq}`
  }

  /** Stores a message's entry; returns its sequence number. */
  append (entry: string): number {
    const now = this.expire()
    const seq = ++this.#last
    const slot = seq % this.#size
    if (seq - this.#size >= this.#oldest) {
      this.#droppedAt = this.#storedAt[slot] // overwritten
      this.#oldest = seq - this.#size + 1
    }
    this.#entries[slot] = entry
    this.#storedAt[slot] = now
    return seq
  }

  /** The entry at `seq`; only for oldest <= seq <= last. */
  entry (seq: number): string {
    return this.#entries[seq % this.#size] as string
  }

  /** Drops the messages older than the ttl (if there is one); returns the time it went by. */
  expire (): number {
    const now = this.#now()
    if (this.#ttl === 0) return now
    while (this.#oldest <= this.#last && now - (this.#storedAt[this.#oldest % this.#size]) >= this.#ttl) {
      this.#droppedAt = this.#storedAt[this.#oldest % this.#size]
      this.#entries[this.#oldest % this.#size] = undefined
      this.#oldest++
    }
    return now
  }

  /**
   * Milliseconds until every message held has aged out: 0 when none is held, Infinity when they
   * are kept whatever their age.
   */
  keptFor (): number {
    if (this.#ttl === 0) return this.#last === 0 ? 0 : Infinity
    const now = this.expire()
    return this.#oldest > this.#last ? 0 : this.#storedAt[this.#last % this.#size] + this.#ttl - now
  }

  /**
   * Where a client that saw `lastEventId` resumes. No id: a new client, live from now, or with
   * `since`, from the first message stored at most `since` milliseconds ago. An id of this epoch
   * still in reach: replay what follows it. Anything else (another epoch, older than the history,
   * ahead of it, not an id at all, null for a value that is none of ours): a reset, never a silent
   * gap.
   */
  resume (lastEventId: string | undefined | null, since?: number): Resume {
    if (lastEventId === undefined) return since === undefined ? { replayFrom: this.#last + 1 } : this.#since(since)
    if (lastEventId === null) return { reset: true }
    const dash = lastEventId.lastIndexOf('-')
    const seq = wholeNumber(lastEventId.slice(dash + 1))
    if (dash === -1 || lastEventId.slice(0, dash) !== this.epoch || seq === undefined) return { reset: true }
    if (this.#ttl > 0) this.expire()
    if (seq > this.#last || seq < this.#oldest - 1) return { reset: true }
    return { replayFrom: seq + 1 }
  }

  // A message dropped (overwritten, aged out) within the window was lost to this client: a reset,
  // as for an id out of reach. Times grow with the sequence numbers: a binary search finds the
  // first message of the window.
  #since (since: number): Resume {
    const cutoff = this.expire() - since
    if (this.#droppedAt >= cutoff) return { reset: true }
    let low = this.#oldest
    let high = this.#last + 1
    while (low < high) {
      const middle = Math.floor((low + high) / 2)
      if (this.#storedAt[middle % this.#size] >= cutoff) high = middle
      else low = middle + 1
    }
    return { replayFrom: low }
  }
}
