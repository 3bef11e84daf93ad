// One named channel as this instance follows it in Redis: messages arrive on pub/sub, and every
// time that stream of messages cannot be trusted (first subscription, a gap in the numbers, a
// message of another epoch, a reconnected subscriber connection) the instance reads the log
// instead. The listener sees each message once, in order, numbered without gaps within an epoch,
// or a reset when the log started afresh or moved past what it holds. Tokens (scripts.ts)
// tell a log that forked under the same epoch and numbers: that epoch is retired.
import type { ChannelKeys } from './scripts.js'

/** A page of the log: where it stands, and the entries after the position asked for. */
export interface LogPage {
  epoch: string
  last: number
  /** The token of message `last`; `-` before the first. */
  lastToken: string
  /** Present when the epoch asked for is the log's: [seq, message, token] in order. */
  entries?: Array<[seq: number, message: string, token: string]>
  /** With entries: the token of the message at the position asked for, while the log holds it. */
  tokenAtAfter?: string
}

/** What a topic needs from the connection to Redis. */
export interface LogReader {
  read (keys: ChannelKeys, epoch: string, after: number, count: number): Promise<LogPage>
  retireEpoch (keys: ChannelKeys, epoch: string, seq: number, token: string): Promise<void>
  /** A read failed (the topic is stale): stale topics are read again once Redis can answer. */
  readFailed (err: Error): void
}

export interface TopicListener {
  /** Where the channel stands, once subscribed: streams can start (and resume) from here. */
  located (epoch: string, last: number): void
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
  /** The token of message #last, as this instance delivered it (or first read it). */
  #lastToken = '-'
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

  /** A message from pub/sub, with its predecessor's token and its own. */
  live (epoch: string, seq: number, prevToken: string, token: string, message: string): void {
    if (epoch === this.#epoch && seq === this.#last + 1 && prevToken === this.#lastToken && !this.#restarted) {
      this.#last = seq
      this.#lastToken = token
      this.#listener.message(epoch, seq, message)
    } else if (epoch !== this.#epoch || seq > this.#last) {
      // A gap, another epoch, a predecessor this instance did not deliver (a fork), or not
      // subscribed long enough to know: the log tells.
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
    let more: boolean
    do {
      this.#again = false
      do {
        // Where the read starts, and what this instance delivered there.
        const after = this.#last
        const token = this.#lastToken
        more = this.#apply(await this.#log.read(this.keys, this.#epoch ?? '', after, PAGE), after, token)
      } while (more)
    } while (this.#again)
  }

  /** Applies one page read after seq `after` (whose token was `token` here); true when there is more to read. */
  #apply ({ epoch, last, lastToken, entries, tokenAtAfter }: LogPage, after: number, token: string): boolean {
    // No longer followed (its last stream ended while the log was read): the page goes nowhere.
    if (this.closed) return false
    if (this.#epoch === undefined) {
      this.#epoch = epoch
      this.#last = last
      this.#lastToken = lastToken
      this.#listener.located(epoch, last)
      return false
    }
    if (entries === undefined) {
      // A new epoch (Redis restarted empty, or the channel was made afresh): read it from its
      // start. From no epoch at all (nobody had published), nothing was missed: no reset.
      this.#restarted = this.#epoch !== ''
      this.#epoch = epoch
      this.#last = 0
      this.#lastToken = '-'
      return true
    }
    if (last < this.#last || (tokenAtAfter !== undefined && tokenAtAfter !== token)) {
      // The log went back in time, or forked, under the same epoch: retire it, and read the new one.
      this.#log.retireEpoch(this.keys, epoch, after, token).then(() => this.catchUp(), this.#failed)
      return false
    }
    // The log's first entry after where the read started: past what this instance has (pub/sub
    // may have delivered the whole page meanwhile, which is no gap), what lies before it is gone.
    const first = entries.length > 0 ? entries[0][0] : last + 1
    if (this.#restarted || first - 1 > this.#last) {
      // Subscribers are told where they stand now.
      this.#restarted = false
      this.#last = Math.max(this.#last, first - 1)
      if (entries.length === 0) this.#lastToken = lastToken // #last is `last`
      this.#listener.reset(epoch, this.#last)
    }
    // Without what pub/sub delivered while the page was read.
    const fresh = entries.filter(([seq]) => seq > this.#last)
    for (const [seq, message, entryToken] of fresh) {
      this.#last = seq
      this.#lastToken = entryToken
      this.#listener.message(epoch, seq, message)
    }
    return this.#last < last
  }
}
