// Several sources in one stream: `reply.comet({ chat: room, clock: ticks }, callback)`. Each key's
// source becomes a feed of its own, with its own position in the cursor, its own maxQueue and its
// own resets; they share the document, its backpressure, limits, heartbeats and rotation. Each
// feed writes to a lane: the stream puts a `3,KEY,` entry before a lane's messages wherever the
// key changes within a script, so a channel's entry, built once per message, is written as is.
import { FST_COMET_INVALID_OPTION, FST_COMET_INVALID_SOURCE } from './errors.js'
import { keyEntry } from './encode.js'
import type { CometFeed, CometSubscriber, FeedContext, FeedEndReason } from './feed.js'
import { abandonSource, openSource } from './source.js'
import type { CometSource } from '../types/index.js'

// Keys travel in every script and in the cursor: short, and nothing to escape anywhere.
const VALID_KEY = /^[\w-]{1,64}$/
export const MAX_KEYS = 64

type IdOf = ((message: unknown) => unknown) | undefined

/** The stream as its lanes see it (stream.ts implements it). */
export interface LaneTarget extends Pick<CometSubscriber, 'ready' | 'whenReady' | 'control' | 'fail'> {
  deliverTo (lane: Lane, entry: string): void
  end (reason: FeedEndReason): void
  overflowed (lane: Lane): void
}

/** One key's place in a multiplexed stream: what its feed sees of the stream. */
export class Lane implements CometSubscriber {
  readonly key: string
  /** The `3,KEY,` entry, built once per stream. */
  readonly keyEntry: string
  readonly maxQueue: number
  /** Messages of this lane in the stream's unwritten batch, counted since write number `writes`. */
  pending = 0
  writes = 0
  readonly #feed: MultiplexFeed
  #target!: LaneTarget

  constructor (key: string, maxQueue: number, feed: MultiplexFeed) {
    this.key = key
    this.keyEntry = keyEntry(key)
    this.maxQueue = maxQueue
    this.#feed = feed
  }

  attach (target: LaneTarget): void {
    this.#target = target
  }

  get ready (): boolean {
    return this.#target.ready
  }

  whenReady (): Promise<void> {
    return this.#target.whenReady()
  }

  deliver (entry: string): void {
    this.#target.deliverTo(this, entry)
  }

  /** A control message of this key (a reset) carries the key, so the client knows whose it is. */
  control (type: string, detail: Record<string, unknown>): void {
    this.#target.control(type, { key: this.key, ...detail })
  }

  // A feed ends its subscriber once (see CometSubscriber).
  end (reason: FeedEndReason): void {
    // Too slow for one key is too slow for the document: the client reconnects and resumes all.
    if (reason === 'overflow') return this.#target.overflowed(this)
    // A source that is over leaves the others streaming; the document ends with the last one.
    if (this.#feed.laneDone()) this.#target.end('done')
  }

  fail (err: unknown): void {
    this.#target.fail(err) // the whole document: the client resumes every key
  }
}

/** The feeds of every key, started and stopped together. */
export class MultiplexFeed implements CometFeed {
  readonly keys: string[]
  readonly #feeds: CometFeed[] = []
  readonly lanes: Lane[] = []
  #running = 0

  /** Opens every key's source; throws (releasing those already opened) when one is refused. */
  constructor (sources: Record<string, CometSource<unknown>>, contextOf: (key: string) => FeedContext, id: IdOf) {
    const keys = Object.keys(sources)
    if (keys.length === 0 || keys.length > MAX_KEYS) {
      throw new FST_COMET_INVALID_SOURCE(`an object of ${keys.length} sources (1 to ${MAX_KEYS} keys)`)
    }
    this.keys = keys
    try {
      for (const key of keys) {
        if (!VALID_KEY.test(key)) throw new FST_COMET_INVALID_SOURCE('a source under an invalid key (1 to 64 of A-Z a-z 0-9 _ -)')
        const feed = openSource(sources[key], contextOf(key), id)
        this.#feeds.push(feed)
        // A channel or push source gives its messages their ids itself.
        if (id !== undefined && feed.maxQueue !== Infinity) {
          throw new FST_COMET_INVALID_OPTION('id', `set it on the channel or push source of key "${key}", which encodes each message once`)
        }
        this.lanes.push(new Lane(key, feed.maxQueue, this))
      }
    } catch (err) {
      this.stop()
      for (const key of keys.slice(this.#feeds.length)) abandonSource(sources[key])
      throw err
    }
  }

  /** Each lane counts against its own maxQueue (see Lane); the stream itself holds no single one. */
  get maxQueue (): number {
    return Infinity
  }

  start (target: CometSubscriber & LaneTarget): void {
    this.#running = this.lanes.length
    for (const lane of this.lanes) lane.attach(target)
    for (let i = 0; i < this.#feeds.length; i++) this.#feeds[i].start(this.lanes[i])
  }

  /** One more source is over: true once they all are. */
  laneDone (): boolean {
    return --this.#running === 0
  }

  stop (): void {
    for (const feed of this.#feeds) feed.stop()
  }
}
