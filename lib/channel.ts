// Broadcast: one message, encoded once, delivered to every subscribed stream.
import { encodeMessage, encodeId } from './encode.js'
import { kCometFeed, type CometFeed, type CometSubscriber } from './feed.js'
import { resolveFeedOptions } from './options.js'
import type { CometChannelOptions, CometChannel as PublicCometChannel } from '../types/index.js'

/**
 * A fan-out source: `reply.comet(channel, callback)` subscribes a response until it ends, and
 * `publish()` sends a message to every subscriber. A broker-backed channel (several servers) can
 * extend this class: publish to the broker, and call `deliver()` for what the broker sends back.
 */
export class CometChannel<T = unknown> implements CometFeed, PublicCometChannel<T> {
  readonly maxQueue: number
  private readonly idOf: ((message: T) => unknown) | undefined
  private readonly subscribers = new Set<CometSubscriber>()
  private closed = false

  constructor (options: CometChannelOptions<T> = {}) {
    const { maxQueue, id } = resolveFeedOptions(options)
    this.maxQueue = maxQueue
    this.idOf = id
  }

  /** How many streams are subscribed. */
  get size (): number {
    return this.subscribers.size
  }

  /** Sends `message` to every subscriber. Throws FST_COMET_UNSERIALIZABLE_MESSAGE, delivering nothing, when JSON cannot represent it. */
  publish (message: T): void {
    this.dispatch(message)
  }

  /**
   * Sends to this process's subscribers only. A broker-backed subclass overrides publish() to go
   * through the broker, and calls dispatch() for each message the broker hands back.
   */
  dispatch (message: T): void {
    if (this.closed || this.subscribers.size === 0) return
    const encoded = encodeMessage(message)
    const encodedId = encodeId(this.idOf, message)
    for (const subscriber of this.subscribers) subscriber.deliver(encoded, encodedId)
  }

  /** Ends every subscriber's stream cleanly; later subscribers end at once. */
  close (): void {
    this.closed = true
    for (const subscriber of this.subscribers) subscriber.end('done')
    this.subscribers.clear()
  }

  subscribe (subscriber: CometSubscriber): () => void {
    if (this.closed) subscriber.end('done')
    else this.subscribers.add(subscriber)
    return () => { this.subscribers.delete(subscriber) }
  }

  // A channel keeps nothing for a stream that never subscribed.
  release (): void {}

  [kCometFeed] (): CometFeed {
    return this
  }
}
