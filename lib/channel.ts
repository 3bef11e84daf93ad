// Broadcast: one message, encoded once, delivered to every subscribed stream.
import { encodeMessage, encodeId } from './encode.js'
import { kCometFeed, type CometFeed, type CometFeedSource, type CometSubscriber } from './feed.js'
import { resolveFeedOptions } from './options.js'
import type { CometChannelOptions, CometChannel as PublicCometChannel } from '../types/index.js'

/** Whether a channel was closed, for the plugin's stats(); a symbol, so it stays off the public API. */
export const kChannelClosed = Symbol('fastify-comet.channel-closed')

/** What a channel shares with the feeds of its subscribers. */
interface Subscribers {
  readonly maxQueue: number
  readonly streams: Set<CometSubscriber>
  closed: boolean
}

/**
 * A fan-out source: `reply.comet(channel, callback)` subscribes a response until it ends, and
 * `publish()` sends a message to every subscriber.
 */
export class CometChannel<T = unknown> implements CometFeedSource, PublicCometChannel<T> {
  readonly #idOf: ((message: T) => unknown) | undefined
  readonly #subscribers: Subscribers

  constructor (options: CometChannelOptions<T> = {}) {
    const { maxQueue, id } = resolveFeedOptions(options)
    this.#idOf = id
    this.#subscribers = { maxQueue, streams: new Set(), closed: false }
  }

  /** How many streams are subscribed. */
  get size (): number {
    return this.#subscribers.streams.size
  }

  get [kChannelClosed] (): boolean {
    return this.#subscribers.closed
  }

  /**
   * Sends `message` to every subscriber. Throws FST_COMET_UNSERIALIZABLE_MESSAGE, delivering
   * nothing, when JSON cannot represent it, whether or not anyone is subscribed.
   */
  publish (message: T): void {
    const encoded = encodeMessage(message)
    const encodedId = encodeId(this.#idOf, message)
    const { streams, closed } = this.#subscribers
    if (closed) return
    for (const stream of streams) stream.deliver(encoded, encodedId)
  }

  /** Ends every subscriber's stream cleanly; later subscribers end at once. */
  close (): void {
    const subscribers = this.#subscribers
    subscribers.closed = true
    for (const stream of subscribers.streams) stream.end('done')
    subscribers.streams.clear()
  }

  [kCometFeed] (): CometFeed {
    return new ChannelFeed(this.#subscribers)
  }
}

/** One stream's subscription. */
class ChannelFeed implements CometFeed {
  readonly #subscribers: Subscribers
  #stream: CometSubscriber | undefined

  constructor (subscribers: Subscribers) {
    this.#subscribers = subscribers
  }

  get maxQueue (): number {
    return this.#subscribers.maxQueue
  }

  start (stream: CometSubscriber): void {
    if (this.#subscribers.closed) return stream.end('done')
    this.#stream = stream
    this.#subscribers.streams.add(stream)
  }

  stop (): void {
    if (this.#stream !== undefined) this.#subscribers.streams.delete(this.#stream)
    this.#stream = undefined
  }
}
