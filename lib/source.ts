// Turns what the user passed to reply.comet() into a feed, checked synchronously before anything
// is written. Iterables get an iterator feed, which pulls at the pace the socket takes (sync
// iterators a batch at a time, async ones one await per message) and owns everything a pulled
// source needs at its end: the AbortSignal of a source function, return(), the UTF-8 decoder.
import { describeValue, FST_COMET_INVALID_SOURCE } from './errors.js'
import { encodeId, encodeMessage, messageEntry } from './encode.js'
import { isFeedSource, kCometFeed, type CometFeed, type CometSubscriber, type FeedContext } from './feed.js'
import type { LastEventId } from './last-event-id.js'
import type { CometIterable, CometSource, CometSourceContext } from '../types/index.js'

type IdOf = ((message: unknown) => unknown) | undefined

/** Resolves a source to a feed; throws FST_COMET_INVALID_SOURCE when it is not one. */
export function openSource (source: CometSource<unknown>, context: FeedContext, idOf: IdOf): CometFeed {
  if (typeof source !== 'function') return feedOf(source, context, idOf, undefined)
  const sourceContext = new SourceContext(context.lastEventId)
  let produced: unknown
  try {
    produced = source(sourceContext)
  } catch (failure) {
    return new FailedFeed(failure ?? new Error(String(failure)), sourceContext)
  }
  try {
    return feedOf(produced, context, idOf, sourceContext)
  } catch (err) {
    sourceContext.abort() // the function may have subscribed to something: let it clean up
    throw err
  }
}

/** What kind of source the user passed, for the debug log. */
export function sourceKind (source: unknown): 'function' | 'feed' | 'multiplexed' | 'async-iterable' | 'iterable' {
  if (typeof source === 'function') return 'function'
  if (isFeedSource(source)) return 'feed'
  if (isSourceMap(source)) return 'multiplexed'
  return isAsyncIterable(source) ? 'async-iterable' : 'iterable'
}

/** A plain object of sources (not itself a source): `{ chat: room, clock: fn }`, a multiplexed stream. */
export function isSourceMap (value: unknown): value is Record<string, CometSource<unknown>> {
  if (value === null || typeof value !== 'object' || isFeedSource(value)) return false
  const proto = Object.getPrototypeOf(value)
  return (proto === Object.prototype || proto === null) && !isAsyncIterable(value) &&
    typeof (value as Partial<Iterable<unknown>>)[Symbol.iterator] !== 'function'
}

/** Lets a source that reply.comet() refused clean up: a push source's signal aborts. */
export function abandonSource (source: unknown): void {
  if (isSourceMap(source)) {
    for (const value of Object.values(source)) abandonSource(value)
    return
  }
  if (!isFeedSource(source)) return
  try {
    source[kCometFeed]({ lastEventId: undefined }).stop()
  } catch {} // already feeding another stream: not ours to stop
}

/** For a stream that starts during shutdown: the source is released unread, a function is never called. */
export function unopenedSource (source: unknown): CometFeed {
  abandonSource(source)
  return NO_MESSAGES
}

const NO_MESSAGES: CometFeed = { maxQueue: Infinity, start: ignore, stop: ignore }

function feedOf (value: unknown, context: FeedContext, idOf: IdOf, sourceContext: SourceContext | undefined): CometFeed {
  if (isFeedSource(value)) {
    const feed = value[kCometFeed](context)
    return sourceContext === undefined ? feed : new AbortingFeed(feed, sourceContext)
  }
  return new IteratorFeed(assertIterable(value), idOf, sourceContext)
}

function assertIterable (value: unknown): CometIterable<unknown> {
  // Strings and byte arrays are iterable, but as a source they would send one character or one
  // number per message: almost certainly a mistake, so they are refused.
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) &&
      (isAsyncIterable(value) ||
       typeof (value as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function')) {
    return value as CometIterable<unknown>
  }
  throw new FST_COMET_INVALID_SOURCE(describeValue(value))
}

// What a source function receives. The AbortController is made only if the function reads
// `signal`: many never do, and an idle stream should not pay for one.
class SourceContext implements CometSourceContext {
  readonly lastEventId: string | undefined
  #controller: AbortController | undefined

  constructor (lastEventId: LastEventId) {
    this.lastEventId = lastEventId ?? undefined // a value that is none of ours is no id to resume from
  }

  get signal (): AbortSignal {
    this.#controller ??= new AbortController()
    return this.#controller.signal
  }

  abort (): void {
    this.#controller?.abort()
  }
}

/** Pulls an iterable at the pace of the socket. */
class IteratorFeed implements CometFeed {
  #iterable: CometIterable<unknown> | undefined
  readonly #idOf: IdOf
  readonly #context: SourceContext | undefined
  #iterator: AsyncIterator<unknown> | Iterator<unknown> | undefined
  // Bytes from a Readable without an encoding can end in the middle of a character.
  #decoder: TextDecoder | undefined
  #finished = false
  #stopped = false

  constructor (iterable: CometIterable<unknown>, idOf: IdOf, context: SourceContext | undefined) {
    this.#iterable = iterable
    this.#idOf = idOf
    this.#context = context
  }

  get maxQueue (): number {
    return Infinity // it waits for the socket instead of queueing
  }

  start (subscriber: CometSubscriber): void {
    const iterable = this.#iterable as Partial<AsyncIterable<unknown> & Iterable<unknown>>
    this.#iterable = undefined
    // Each loop catches its own errors: a rejection handler on its promise would cost every
    // stream waiting on its source a few hundred bytes.
    try {
      // Prefer the asynchronous protocol when an object offers both.
      const asyncIterator = iterable[Symbol.asyncIterator]
      if (typeof asyncIterator === 'function') {
        this.#pull(this.#iterator = asyncIterator.call(iterable), subscriber)
      } else {
        this.#pullSync(this.#iterator = (iterable as Iterable<unknown>)[Symbol.iterator](), subscriber)
      }
    } catch (err) {
      subscriber.fail(err)
    }
  }

  // One await per message (the iterator's own); no race against the client leaving:
  // cancellation reaches the source through its AbortSignal and return().
  async #pull (iterator: AsyncIterator<unknown>, subscriber: CometSubscriber): Promise<void> {
    try {
      for (;;) {
        const result = await iterator.next()
        if (this.#stopped) return
        if (result.done === true) return this.#finish(subscriber)
        this.#deliver(subscriber, result.value)
        if (!subscriber.ready) await subscriber.whenReady()
        if (this.#stopped) return
      }
    } catch (err) {
      this.#failed(subscriber, err)
    }
  }

  // Synchronous sources are pulled without awaiting, one batch at a time.
  async #pullSync (iterator: Iterator<unknown>, subscriber: CometSubscriber): Promise<void> {
    try {
      for (;;) {
        do {
          const result = iterator.next()
          if (result.done === true) return this.#finish(subscriber)
          this.#deliver(subscriber, result.value)
          if (this.#stopped) return
        } while (subscriber.ready)
        await subscriber.whenReady()
        if (this.#stopped) return
      }
    } catch (err) {
      this.#failed(subscriber, err)
    }
  }

  #failed (subscriber: CometSubscriber, err: unknown): void {
    // An aborted source often rejects its pending read: not an error once the stream is over.
    if (!this.#stopped) subscriber.fail(err)
  }

  #deliver (subscriber: CometSubscriber, value: unknown): void {
    let message = value
    if (value instanceof Uint8Array) {
      this.#decoder ??= new TextDecoder('utf-8', { ignoreBOM: true })
      message = this.#decoder.decode(value, { stream: true })
      if (message === '') return // the start of a character whose end is in the next chunk
    }
    subscriber.deliver(messageEntry(encodeMessage(message), encodeId(this.#idOf, value)))
  }

  #finish (subscriber: CometSubscriber): void {
    this.#finished = true
    const rest = this.#decoder?.decode()
    if (rest !== undefined && rest !== '') subscriber.deliver(messageEntry(encodeMessage(rest), undefined))
    subscriber.end('done')
  }

  stop (): void {
    this.#stopped = true
    this.#context?.abort()
    const iterator = this.#iterator
    this.#iterator = undefined
    this.#iterable = undefined
    if (!this.#finished && iterator !== undefined) closeIterator(iterator)
  }
}

/** A feed returned by a source function: its signal aborts when the stream is over. */
class AbortingFeed implements CometFeed {
  readonly #feed: CometFeed
  readonly #context: SourceContext

  constructor (feed: CometFeed, context: SourceContext) {
    this.#feed = feed
    this.#context = context
  }

  get maxQueue (): number {
    return this.#feed.maxQueue
  }

  start (subscriber: CometSubscriber): void {
    this.#feed.start(subscriber)
  }

  stop (): void {
    this.#feed.stop()
    this.#context.abort()
  }
}

/** A source function that threw: the stream starts, logs the error and ends, like any source failure. */
class FailedFeed implements CometFeed {
  readonly maxQueue = Infinity // it ends its stream as soon as it starts
  readonly #failure: unknown
  readonly #context: SourceContext

  constructor (failure: unknown, context: SourceContext) {
    this.#failure = failure
    this.#context = context
  }

  start (subscriber: CometSubscriber): void {
    subscriber.fail(this.#failure)
  }

  stop (): void {
    this.#context.abort()
  }
}

// return() runs the source's finally blocks; it may throw or reject, which is of no interest now.
function closeIterator (iterator: AsyncIterator<unknown> | Iterator<unknown>): void {
  if (typeof iterator.return !== 'function') return
  try {
    const closing: unknown = iterator.return()
    if (closing instanceof Promise) closing.then(undefined, ignore)
  } catch {}
}

function isAsyncIterable (value: unknown): boolean {
  return typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function'
}

function ignore (): void {}
