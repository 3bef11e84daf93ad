// A single-consumer push source for callback-style code (Play's older Comet API had sendMessage
// and close): push messages in, reply.comet(source, callback) writes them out.
import { encodeMessage, encodeId } from './encode.js'
import { FST_COMET_SOURCE_CONSUMED } from './errors.js'
import { kCometFeed, type CometFeed, type CometSubscriber } from './feed.js'
import { resolveFeedOptions } from './options.js'
import type { CometPushOptions, CometPush as PublicCometPush } from '../types/index.js'

type Delivery = [encoded: string, encodedId: string | undefined]

export class CometPush<T = unknown> implements CometFeed, PublicCometPush<T> {
  readonly maxQueue: number
  private readonly idOf: ((message: T) => unknown) | undefined
  private readonly controller = new AbortController()
  private subscriber: CometSubscriber | undefined
  /** What was pushed before reply.comet() subscribed, at most maxQueue messages. */
  private early: Delivery[] = []
  /** More than maxQueue messages were pushed before the stream started: it ends as overflowed. */
  private overflowed = false
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
   * Queues one message for the stream. Returns false once there is no point in pushing more:
   * the stream is over (client gone, ended, overflowed), or the queue is full before it started.
   * Throws FST_COMET_UNSERIALIZABLE_MESSAGE when JSON cannot represent the message.
   */
  push (message: T): boolean {
    if (this.ending !== undefined || this.overflowed || this.controller.signal.aborted) return false
    const encoded = encodeMessage(message)
    const encodedId = encodeId(this.idOf, message)
    if (this.subscriber !== undefined) {
      this.subscriber.deliver(encoded, encodedId)
    } else if (this.early.length < this.maxQueue) {
      this.early.push([encoded, encodedId])
    } else {
      this.overflowed = true // said by the stream, which logs it with its request id
      return false
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
    for (const [encoded, encodedId] of early) subscriber.deliver(encoded, encodedId)
    if (this.overflowed) subscriber.overflow()
    else if (this.ending !== undefined) this.settle(subscriber)
    return () => this.release()
  }

  release (): void {
    this.subscriber = undefined
    this.controller.abort()
  }

  [kCometFeed] (): CometFeed {
    // One stream only: a second one would steal half the messages of the first.
    if (this.consumed) throw new FST_COMET_SOURCE_CONSUMED()
    this.consumed = true
    return this
  }
}
