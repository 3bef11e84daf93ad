// One named channel as this instance follows it in Redis: messages arrive on pub/sub, and every
// time that stream of messages cannot be trusted (first subscription, a gap in the numbers, a
// message of another epoch, a reconnected subscriber connection) the instance reads the log
// instead. The listener sees each message once, in order, numbered without gaps within an epoch,
// or a reset when the log started afresh or moved past what it holds.
import type { ChannelKeys } from './redis-scripts.js'

/** A page of the log: where it stands, and the entries after the position asked for. */
export interface LogPage {
  epoch: string
  last: number
  /** Present when the epoch asked for is the log's: [seq, message] in order. */
  entries?: Array<[seq: number, message: string]>
}

/** What a topic needs from the connection to Redis. */
export interface LogReader {
  read (keys: ChannelKeys, epoch: string, after: number, count: number): Promise<LogPage>
  retireEpoch (keys: ChannelKeys, epoch: string, seq: number): Promise<void>
  /** A read failed (the topic is stale): stale topics are read again once Redis can answer. */
  readFailed (err: Error): void
}

export interface TopicListener {
  /** Where the channel stands, once subscribed: streams can start (and resume) from here. */
  position (epoch: string, last: number): void
  /** The log started afresh or dropped what this instance had not seen: subscribers are told. */
  reset (epoch: string, last: number): void
  message (epoch: string, seq: number, message: string): void
}

/** Entries read per round trip while catching up. */
const PAGE = 1000

export class Topic {
  readonly keys: ChannelKeys
  readonly #log: LogReader
  readonly #listener: TopicListener
  /** Undefined until the first read: until then nothing is delivered. */
  #epoch: string | undefined
  #last = 0
  #reading = false
  /** Another read was asked for while one ran. */
  #again = false
  /** The epoch changed: the next page decides where subscribers restart. */
  #restarted = false
  /** A read failed (Redis unreachable): the next reconnection reads again. */
  stale = false
  closed = false

  constructor (keys: ChannelKeys, log: LogReader, listener: TopicListener) {
    this.keys = keys
    this.#log = log
    this.#listener = listener
  }

  /** A message from pub/sub. */
  live (epoch: string, seq: number, message: string): void {
    if (epoch === this.#epoch && seq === this.#last + 1 && !this.#restarted) {
      this.#last = seq
      this.#listener.message(epoch, seq, message)
    } else if (epoch !== this.#epoch || seq > this.#last) {
      // A gap, another epoch, or not subscribed long enough to know: the log has it all.
      this.catchUp()
    }
    // else: already delivered (read from the log while pub/sub caught up)
  }

  /** Reads the log until this instance has delivered all of it; coalesces concurrent calls. */
  catchUp (): void {
    if (this.#reading) {
      this.#again = true
      return
    }
    this.#reading = true
    this.stale = false
    this.#read().then(() => {
      this.#reading = false
    }, (err: Error) => {
      this.#reading = false
      this.#failed(err)
    })
  }

  /** Redis is unreachable, or slow: the streams wait until the reader has the log read again. */
  readonly #failed = (err: Error): void => {
    this.stale = true
    this.#log.readFailed(err)
  }

  async #read (): Promise<void> {
    do {
      this.#again = false
      while (this.#apply(await this.#log.read(this.keys, this.#epoch ?? '', this.#last, PAGE)));
    } while (this.#again)
  }

  /** Applies one page; true when there is more to read. */
  #apply ({ epoch, last, entries }: LogPage): boolean {
    // No longer followed (its last stream ended while the log was read): the page goes nowhere.
    if (this.closed) return false
    if (this.#epoch === undefined) {
      this.#epoch = epoch
      this.#last = last
      this.#listener.position(epoch, last)
      return false
    }
    if (entries === undefined) {
      // A new epoch (Redis restarted empty, or the channel was made afresh): read it from its start.
      this.#epoch = epoch
      this.#last = 0
      this.#restarted = true
      return true
    }
    if (last < this.#last) {
      // The log went back in time under the same epoch: retire it, and read the new one.
      this.#log.retireEpoch(this.keys, epoch, this.#last).then(() => this.catchUp(), this.#failed)
      return false
    }
    // Without what pub/sub delivered while the page was read.
    const fresh = entries.filter(([seq]) => seq > this.#last)
    const first = fresh.length > 0 ? fresh[0][0] : last + 1
    if (this.#restarted || first > this.#last + 1) {
      // What lies before `first` is gone: subscribers are told where they stand now.
      this.#restarted = false
      this.#last = first - 1
      this.#listener.reset(epoch, this.#last)
    }
    for (const [seq, message] of fresh) {
      this.#last = seq
      this.#listener.message(epoch, seq, message)
    }
    return this.#last < last
  }
}
