// A single-consumer push source for callback-style code (Play's older Comet API had sendMessage
// and close): push messages in, reply.comet(source, callback) writes them out.
import { encodeMessage, encodeId, messageEntry } from './encode.js'
import { FST_COMET_SOURCE_CONSUMED } from './errors.js'
import { kCometFeed, type CometFeed, type CometFeedSource, type CometSubscriber } from './feed.js'
import { resolvePushOptions } from './options.js'
import type { CometPushOptions, CometPush as PublicCometPush } from '../types/index.js'

type Ending = { failure: unknown }

export class CometPush<T = unknown> implements CometFeed, CometFeedSource, PublicCometPush<T> {
  readonly maxQueue: number
  readonly #idOf: ((message: T) => unknown) | undefined
  #controller: AbortController | undefined
  #subscriber: CometSubscriber | undefined
  /** Entries pushed before the stream started: at most maxQueue of them. */
  #early: string[] = []
  /** More was pushed before the stream started than it may hold: it starts as overflowed. */
  #overflowed = false
  #ending: Ending | undefined
  #claimed = false
  #stopped = false

  constructor (options: CometPushOptions<T> = {}) {
    const { maxQueue, id } = resolvePushOptions(options)
    this.maxQueue = maxQueue
    this.#idOf = id
  }

  /** Aborts when the stream that consumes this source has ended, or will never start. */
  get signal (): AbortSignal {
    this.#controller ??= new AbortController()
    if (this.#stopped) this.#controller.abort()
    return this.#controller.signal
  }

  /**
   * Queues one message for the stream. Returns false once there is no point in pushing more:
   * the stream is over (client gone, ended, overflowed), or the queue is full before it started.
   * Throws FST_COMET_UNSERIALIZABLE_MESSAGE when JSON cannot represent the message.
   */
  push (message: T): boolean {
    if (this.#ending !== undefined || this.#overflowed || this.#stopped) return false
    const entry = messageEntry(encodeMessage(message), encodeId(this.#idOf, message))
    const subscriber = this.#subscriber
    if (subscriber !== undefined) {
      // The stream's trouble ends the stream (logged there), not the caller's code.
      try {
        subscriber.deliver(entry)
      } catch (err) {
        subscriber.fail(err)
      }
      return !this.#stopped
    }
    if (this.#early.length < this.maxQueue) {
      this.#early.push(entry)
      return true
    }
    this.#overflowed = true // said by the stream, which logs it with its request id
    return false
  }

  /** Ends the stream cleanly once what was pushed is written. */
  end (): void {
    this.#finish({ failure: undefined })
  }

  /** Ends the stream as failed: the error is logged through the request's logger. */
  error (err: unknown): void {
    this.#finish({ failure: err ?? new Error('comet push source failed') })
  }

  #finish (ending: Ending): void {
    if (this.#ending !== undefined) return
    this.#ending = ending
    if (this.#subscriber !== undefined) settle(this.#subscriber, ending)
  }

  start (subscriber: CometSubscriber): void {
    this.#subscriber = subscriber
    const early = this.#early
    this.#early = []
    for (const entry of early) subscriber.deliver(entry)
    if (this.#overflowed) subscriber.end('overflow')
    else if (this.#ending !== undefined) settle(subscriber, this.#ending)
  }

  stop (): void {
    this.#stopped = true
    this.#subscriber = undefined
    this.#early = []
    this.#controller?.abort()
  }

  [kCometFeed] (): CometFeed {
    // One stream only: a second one would steal half the messages of the first.
    if (this.#claimed) throw new FST_COMET_SOURCE_CONSUMED()
    this.#claimed = true
    return this
  }
}

function settle (subscriber: CometSubscriber, ending: Ending): void {
  if (ending.failure === undefined) subscriber.end('done')
  else subscriber.fail(ending.failure)
}
