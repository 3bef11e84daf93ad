// Turns what the user passed to reply.comet() into something the stream can read: an iterator
// (with an AbortController when the source is a function that asked for a signal) or a push feed.
// Checked synchronously, before anything is written.
import { describeValue, FST_COMET_INVALID_SOURCE } from './errors.js'
import { isFeedSource, kCometFeed, type CometFeed } from './feed.js'
import type { CometIterable, CometSource, CometSourceContext } from '../types/index.js'

export type CometIterator = AsyncIterator<unknown> | Iterator<unknown>

export interface OpenedSource {
  /** For the debug log: what kind of source this stream reads. */
  kind: 'function' | 'async-iterable' | 'iterable' | 'feed'
  /** The iterable to pull from (empty when the source is a feed or failed). */
  iterable: CometIterable<unknown>
  /** Whether items come from a plain (synchronous) iterator, which is pulled without awaiting. */
  sync: boolean
  /** A push source that delivers encoded messages itself. */
  feed: CometFeed | undefined
  /** Aborted when the stream ends, so a source function blocked on an event lets go. */
  controller: AbortController | undefined
  /** What the source function threw: the stream starts, logs it and ends, like any source failure. */
  failure: unknown
}

const NOTHING: CometIterable<unknown> = []

/** Resolves a source to an iterable or a feed; throws FST_COMET_INVALID_SOURCE when it is neither. */
export function openSource (source: CometSource<unknown>, lastEventId: string | undefined): OpenedSource {
  if (typeof source !== 'function') return fromValue(source, undefined, undefined)
  const controller = new AbortController()
  const context: CometSourceContext = { signal: controller.signal, lastEventId }
  let produced: unknown
  try {
    produced = source(context)
  } catch (failure) {
    return { kind: 'function', iterable: NOTHING, sync: true, feed: undefined, controller, failure: failure ?? new Error(String(failure)) }
  }
  try {
    return fromValue(produced, controller, 'function')
  } catch (err) {
    controller.abort() // the function may have subscribed to something: let it clean up
    throw err
  }
}

function fromValue (value: unknown, controller: AbortController | undefined, kind: OpenedSource['kind'] | undefined): OpenedSource {
  if (isFeedSource(value)) {
    return { kind: kind ?? 'feed', iterable: NOTHING, sync: true, feed: value[kCometFeed](), controller, failure: undefined }
  }
  const iterable = assertIterable(value)
  const sync = typeof (iterable as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function'
  return { kind: kind ?? (sync ? 'iterable' : 'async-iterable'), iterable, sync, feed: undefined, controller, failure: undefined }
}

function assertIterable (value: unknown): CometIterable<unknown> {
  // Strings and byte arrays are iterable, but as a source they would send one character or one
  // number per message: almost certainly a mistake, so they are refused.
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) &&
      (typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function' ||
       typeof (value as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function')) {
    return value as CometIterable<unknown>
  }
  throw new FST_COMET_INVALID_SOURCE(describeValue(value))
}

/** Lets a source that was opened but will never be read clean up: aborts its signal, releases its feed. */
export function releaseSource (opened: OpenedSource): void {
  opened.controller?.abort()
  opened.feed?.release()
}

/** The iterator behind an iterable, preferring the asynchronous protocol when both exist. */
export function iteratorOf (iterable: CometIterable<unknown>, sync: boolean): CometIterator {
  return sync
    ? (iterable as Iterable<unknown>)[Symbol.iterator]()
    : (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]()
}
