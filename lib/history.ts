// The last N messages of a channel, and the ids that point into them. An id is `EPOCH-SEQ`:
// SEQ counts the channel's messages from 1, EPOCH is 12 random hex digits per channel, so a restarted process
// or a new channel under the same name is never mistaken for the old sequence. Pure: no I/O.
import { randomBytes } from 'node:crypto'

/** Where a reconnecting client resumes: replay from `from` on, or a reset when that is not possible. */
export type Resume = { replayFrom: number } | { reset: true }

export class History {
  readonly epoch = randomBytes(6).toString('hex')
  readonly #size: number
  /** The messages' entries (encode.ts's messageEntry, id included), in a ring of `size` slots. */
  readonly #entries: string[] = []
  /** Sequence number of the newest message; 0 before the first. */
  #last = 0

  constructor (size: number) {
    this.#size = size
  }

  get last (): number {
    return this.#last
  }

  /** Sequence number of the oldest message still held. */
  get oldest (): number {
    return Math.max(1, this.#last - this.#size + 1)
  }

  idOf (seq: number): string {
    return `${this.epoch}-${seq}`
  }

  /** Stores a message's entry; returns its sequence number. */
  append (entry: string): number {
    const seq = ++this.#last
    this.#entries[seq % this.#size] = entry
    return seq
  }

  /** The entry at `seq`; only for oldest <= seq <= last. */
  entry (seq: number): string {
    return this.#entries[seq % this.#size]
  }

  /**
   * Where a client that saw `lastEventId` resumes. No id: a new client, live from now. An id of
   * this epoch still in reach: replay what follows it. Anything else (another epoch, older than
   * the history, ahead of it, not an id at all, null for a value that is none of ours): a reset,
   * never a silent gap.
   */
  resume (lastEventId: string | undefined | null): Resume {
    if (lastEventId === undefined) return { replayFrom: this.#last + 1 }
    if (lastEventId === null) return { reset: true }
    const dash = lastEventId.lastIndexOf('-')
    const seqText = lastEventId.slice(dash + 1)
    if (dash === -1 || lastEventId.slice(0, dash) !== this.epoch || !/^(0|[1-9]\d{0,15})$/.test(seqText)) return { reset: true }
    const seq = Number(seqText)
    if (seq > this.#last || seq < this.oldest - 1) return { reset: true }
    return { replayFrom: seq + 1 }
  }
}
