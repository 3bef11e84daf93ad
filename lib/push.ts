// A single-consumer push source for callback-style code (Play's older Comet API had sendMessage
// and close): push messages in, reply.comet(source, callback) writes them out.
import { encodeMessage, encodeMessageId } from './encode.js'
import { FST_COMET_INVALID_SOURCE } from './errors.js'
import { kCometFeed, type CometFeed, type CometSubscriber } from './feed.js'
import { resolveFeedOptions } from './options.js'
import type { CometPushOptions, CometPush as PublicCometPush } from '../types/index.js'

type Delivery = [encoded: string, id: string | undefined]

export class CometPush<T = unknown> implements CometFeed, PublicCometPush<T> {
  readonly maxQueue: number
  private readonly idOf: ((message: T) => unknown) | undefined
  private readonly controller = new AbortController()
  private subscriber: CometSubscriber | undefined
  /** What was pushed before reply.comet() subscribed; one past maxQueue is kept so the stream sees the overflow. */
  private early: Delivery[] = []
  private ending: { failure: unknown } | undefined
  private consumed = false

  constructor (options: CometPushOptions<T> = {}) {
    const { maxQueue, id } = resolveFeedOptions(options)
    this.maxQueue = maxQueue
    this.idOf = id
  }

  /** Aborts when the stream that consumes this source has ended: stop producing then. */
  get signal (): AbortSignal {
    return this.controller.signal
  }

  /**
   * Queues one message for the stream. Returns false once the stream is over (client gone, ended,
   * overflowed), when there is no point in pushing more. Throws FST_COMET_UNSERIALIZABLE_MESSAGE
   * when JSON cannot represent the message.
   */
  push (message: T): boolean {
    if (this.ending !== undefined || this.controller.signal.aborted) return false
    const encoded = encodeMessage(message)
    const id = this.idOf === undefined ? undefined : encodeMessageId(this.idOf(message))
    if (this.subscriber !== undefined) {
      this.subscriber.deliver(encoded, id)
    } else if (this.early.length <= this.maxQueue) {
      this.early.push([encoded, id])
    }
    return !this.controller.signal.aborted
  }

  /** Ends the stream cleanly once what was pushed is written. */
  end (): void {
    this.finish({ failure: undefined })
  }

  /** Ends the stream as failed: the error is logged through the request's logger. */
  error (err: unknown): void {
    this.finish({ failure: err ?? new Error('comet push source failed') })
  }

  private finish (ending: { failure: unknown }): void {
    if (this.ending !== undefined) return
    this.ending = ending
    if (this.subscriber !== undefined) this.settle(this.subscriber)
  }

  private settle (subscriber: CometSubscriber): void {
    if (this.ending?.failure === undefined) subscriber.end('done')
    else subscriber.fail(this.ending.failure)
  }

  subscribe (subscriber: CometSubscriber): () => void {
    this.subscriber = subscriber
    const early = this.early
    this.early = []
    for (const [encoded, id] of early) subscriber.deliver(encoded, id)
    if (this.ending !== undefined) this.settle(subscriber)
    return () => {
      this.subscriber = undefined
      this.controller.abort()
    }
  }

  [kCometFeed] (): CometFeed {
    // One stream only: a second one would steal half the messages of the first.
    if (this.consumed) throw new FST_COMET_INVALID_SOURCE('a push source that another stream already consumes')
    this.consumed = true
    return this
  }
}
