// A named channel shared through Redis by every instance: publish() goes to Redis, which numbers
// and stores the message; every instance (this one too) delivers it when it comes back, so all of
// them deliver the same messages in the same order with the same ids. A reconnecting client
// resumes on any instance: what it missed is read from the log in Redis, then it goes live.
import { encodeMessage, messageEntry, scriptSafe } from '../encode.js'
import { kCometFeed, type CometFeed, type CometFeedSource, type CometSubscriber, type FeedContext } from '../feed.js'
import { kChannelClosed, kOnClose } from '../channel.js'
import type { LastEventId } from '../last-event-id.js'
import { wholeNumber } from '../whole-number.js'
import type { RedisLink } from './link.js'
import type { ChannelKeys } from './scripts.js'
import type { LogPage, Topic, TopicListener } from './topic.js'

/** Entries read per round trip while a client catches up. */
const REPLAY_PAGE = 500

export interface BrokeredChannelSettings {
  history: number
  historyTtl: number
  maxQueue: number
}

export class BrokeredChannel<T = unknown> implements CometFeedSource, TopicListener {
  readonly name: string
  readonly history: number
  readonly historyTtl: number
  readonly maxQueue: number
  readonly link: RedisLink
  readonly keys: ChannelKeys
  readonly #feeds = new Set<BrokeredFeed>()
  /** Followed in Redis while this instance has subscribers, and only then. */
  #topic: Topic | undefined
  /** Where this instance stands in the channel; epoch undefined until the topic has read the log. */
  epoch: string | undefined
  last = 0
  #closed = false
  #onClose: (() => void) | undefined

  constructor (name: string, settings: BrokeredChannelSettings, link: RedisLink) {
    this.name = name
    this.history = settings.history
    this.historyTtl = settings.historyTtl
    this.maxQueue = settings.maxQueue
    this.link = link
    this.keys = link.keysOf(name)
  }

  get size (): number {
    return this.#feeds.size
  }

  get [kChannelClosed] (): boolean {
    return this.#closed
  }

  [kOnClose] (listener: () => void): void {
    this.#onClose = listener
  }

  /**
   * Stores and sends `message` through Redis; resolves with its id. Throws
   * FST_COMET_UNSERIALIZABLE_MESSAGE synchronously; rejects with FST_COMET_PUBLISH_FAILED when
   * Redis cannot be reached within the broker's commandTimeout.
   */
  publish (message: T): Promise<string> {
    return this.link.publish(this.keys, this.name, this.history, this.historyTtl, encodeMessage(message))
  }

  /**
   * The id of the newest message in Redis, for a page rendered now (see CometChannel.position);
   * `-0` for a channel nobody has published in yet (Redis holds nothing of it, and this read
   * writes nothing), which replays from its first message. Rejects when Redis does not answer
   * within the broker's commandTimeout.
   */
  async position (): Promise<string> {
    const { epoch, last } = await this.link.read(this.keys, '', 0, 0)
    return `${epoch}-${last}`
  }

  /** Ends this instance's subscribers cleanly and stops following the channel here. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    for (const feed of this.#feeds) feed.close()
    this.#onClose?.()
  }

  [kCometFeed] (context: FeedContext): CometFeed {
    return new BrokeredFeed(this, context)
  }

  subscribe (feed: BrokeredFeed, stream: CometSubscriber): void {
    if (this.#closed) return stream.end('done')
    this.#feeds.add(feed)
    if (this.#topic === undefined) this.#topic = this.link.follow(this.keys, this)
    else if (this.epoch !== undefined) feed.resume(this.epoch, this.last)
  }

  unsubscribe (feed: BrokeredFeed): void {
    if (!this.#feeds.delete(feed) || this.#feeds.size > 0 || this.#topic === undefined) return
    this.link.unfollow(this.#topic)
    this.#topic = undefined
    this.epoch = undefined
  }

  located (epoch: string, last: number): void {
    this.epoch = epoch
    this.last = last
    for (const feed of this.#feeds) feed.resume(epoch, last)
  }

  reset (epoch: string, last: number): void {
    this.epoch = epoch
    this.last = last
    for (const feed of this.#feeds) feed.moved(epoch, last)
  }

  message (epoch: string, seq: number, message: string): void {
    // Located before anyone published, the channel learns its epoch from its first message.
    this.epoch = epoch
    this.last = seq
    const id = `${epoch}-${seq}`
    // Encoded by the instance that published it; escaped again, as whatever Redis holds could be.
    // Built once here, the entry is shared by every stream of this instance.
    const entry = messageEntry(scriptSafe(message), encodeMessage(id))
    // One stream's trouble ends that stream; it must not reach Redis's handler or the others.
    for (const feed of this.#feeds) try { feed.live(seq, entry, id) } catch (err) { feed.fail(err) }
  }
}

/** One stream's subscription: waits for the channel's position, replays from Redis, then goes live. */
class BrokeredFeed implements CometFeed {
  readonly #channel: BrokeredChannel
  #stream: CometSubscriber | undefined
  /** The id of the last message this client has (from the request, then as delivered); null: not ours. */
  #lastId: LastEventId
  #resumed = false
  /** While replaying from the log: the seq of the next message to read. */
  #replayNext = 0
  /** Live messages up to this seq already reached the client through another instance. */
  #seenThrough = 0
  /** A client with no id: the milliseconds back it asks for (`?since=`). */
  readonly #since: number | undefined

  constructor (channel: BrokeredChannel, { lastEventId, since }: FeedContext) {
    this.#channel = channel
    this.#lastId = lastEventId
    this.#since = since
  }

  get maxQueue (): number {
    return this.#channel.maxQueue
  }

  start (stream: CometSubscriber): void {
    this.#stream = stream
    this.#channel.subscribe(this, stream)
  }

  /** The channel knows where it stands: resume from the client's id, or start live. */
  resume (epoch: string, last: number): void {
    this.#resumed = true
    // A channel nobody has published in yet: all its first epoch brings is in the window, live.
    if (this.#since !== undefined && epoch !== '') {
      this.#replaySince(this.#stream as CometSubscriber, epoch, this.#since).then(undefined, err => this.#stream?.fail(err))
      return
    }
    const seq = seqOf(this.#lastId, epoch)
    if (this.#lastId === undefined || seq === last) return
    if (seq === undefined || seq < last - this.#channel.history) return this.reset(`${epoch}-${last}`)
    if (seq < last) {
      this.#replayNext = seq + 1
      this.#replay(this.#stream as CometSubscriber, epoch).then(undefined, err => this.#stream?.fail(err))
    } else {
      // Ahead of this instance: the client came from one that has already delivered more.
      this.#seenThrough = seq
      this.#checkAhead(epoch, seq).then(undefined, err => this.#stream?.fail(err))
    }
  }

  /** The channel skipped ahead to `last`: a reset for a client that had not got that far. */
  moved (epoch: string, last: number): void {
    const seq = seqOf(this.#lastId, epoch)
    // A client that came from an instance that was ahead may already have everything up to there.
    if (seq === undefined || seq < last) this.reset(`${epoch}-${last}`)
  }

  /** What the client missed is gone: it is told, and goes on from `id`. */
  reset (id: string): void {
    this.#replayNext = 0
    this.#seenThrough = 0
    this.#stream?.control('reset', { lastEventId: this.#lastId ?? undefined, id })
    this.#lastId = id
  }

  live (seq: number, entry: string, id: string): void {
    if (!this.#resumed || this.#replayNext !== 0 || seq <= this.#seenThrough) return
    this.#lastId = id
    this.#stream?.deliver(entry)
  }

  fail (err: unknown): void {
    this.#stream?.fail(err)
  }

  close (): void {
    this.#stream?.end('done')
  }

  stop (): void {
    this.#channel.unsubscribe(this)
    this.#stream = undefined
    this.#replayNext = 0
  }

  // Paced like any pulled source: pages are read as the socket takes them. Live messages wait in
  // the log meanwhile, and the replay hands over to them once it has reached the channel's position.
  // One check after every wait: a stop or a reset meanwhile sets #replayNext to 0.
  async #replay (stream: CometSubscriber, epoch: string): Promise<void> {
    const channel = this.#channel
    let page: NonNullable<LogPage['entries']> = []
    let at = 0
    let firstPage = true
    while (this.#replayNext !== 0 && this.#replayNext <= channel.last) {
      if (!stream.ready) {
        await stream.whenReady()
      } else if (at < page.length) {
        const [seq, message] = page[at++]
        this.#lastId = `${epoch}-${seq}`
        this.#replayNext = seq + 1
        stream.deliver(messageEntry(scriptSafe(message), encodeMessage(this.#lastId)))
      } else {
        const { entries, last } = await channel.link.replay(channel.keys, epoch, this.#replayNext - 1, REPLAY_PAGE)
        // Stopped or reset during the read: the loop ends.
        if (this.#replayNext === 0) break
        // The log started afresh: the client reconnects, and is told then.
        if (entries === undefined) return stream.end('overflow')
        const first = entries.length > 0 ? entries[0][0] : last + 1
        if (first !== this.#replayNext) {
          // Trimmed while it replayed (too slow for the channel): the client reconnects, and is
          // told then. Already missing at the first page, though this instance's history said
          // it would be there (another instance keeps a shorter one, or the log was deleted):
          // the client is told at once, or every reconnection would end the same way.
          if (!firstPage) return stream.end('overflow')
          this.reset(`${epoch}-${first - 1}`)
          this.#replayNext = first
        }
        firstPage = false
        page = entries
        at = 0
      }
    }
    this.#replayNext = 0
  }

  // Redis says where the window starts, by its own clock; live messages wait in the log meanwhile
  // (-1 holds them back), and the replay reads them. A window that lost something, or a log that
  // started afresh meanwhile: a reset, as for an id out of reach.
  async #replaySince (stream: CometSubscriber, epoch: string, since: number): Promise<void> {
    this.#replayNext = -1
    const found = await this.#channel.link.since(this.#channel.keys, since)
    if (this.#replayNext === 0) return // stopped or reset meanwhile
    if (found.epoch !== epoch || found.from === 0) return this.reset(`${epoch}-${this.#channel.last}`)
    // Messages before the window (this instance may not have heard them all yet) are not the client's.
    this.#seenThrough = found.from - 1
    this.#replayNext = found.from
    await this.#replay(stream, epoch)
  }

  // An id ahead of what this instance has delivered is real only if Redis has it. (Stopped
  // meanwhile, the reset goes nowhere.)
  async #checkAhead (epoch: string, seq: number): Promise<void> {
    const page = await this.#channel.link.replay(this.#channel.keys, epoch, seq, 1)
    if (page.entries === undefined || seq > page.last) this.reset(`${page.epoch}-${page.last}`)
  }
}

/**
 * The seq of `id` in `epoch`, if it is one. `-0` is where a channel without an epoch (nobody
 * published in it yet) stands: the start of whatever epoch comes, whose first page then shows
 * whether it still holds everything from there.
 */
function seqOf (id: LastEventId, epoch: string): number | undefined {
  if (id === '-0') return 0
  if (typeof id !== 'string' || !id.startsWith(epoch + '-')) return undefined
  return wholeNumber(id.slice(epoch.length + 1))
}
