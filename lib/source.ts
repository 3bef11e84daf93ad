// Turns what the user passed to reply.comet() into one iterator, and an AbortController when the
// source is a function that asked for a signal. Checked synchronously, before anything is written.
import { FST_COMET_INVALID_SOURCE } from './errors.js'
import type { CometSource, CometIterable } from '../types/index.js'

export type CometIterator = AsyncIterator<unknown> | Iterator<unknown>

export interface OpenedSource {
  /** The iterable to pull from, or undefined when the source function threw (see `failure`). */
  iterable: CometIterable<unknown> | undefined
  /** Whether items come from a plain (synchronous) iterator, which is pulled without awaiting. */
  sync: boolean
  /** Aborted when the stream ends, so a source function blocked on an event lets go. */
  controller: AbortController | undefined
  /** What the source function threw: the stream starts, logs it and ends, like any source failure. */
  failure: unknown
}

/** Resolves a source to an iterable; throws FST_COMET_INVALID_SOURCE when it cannot be one. */
export function openSource (source: CometSource<unknown>): OpenedSource {
  if (typeof source !== 'function') {
    return { iterable: assertIterable(source), sync: isSync(source), controller: undefined, failure: undefined }
  }
  const controller = new AbortController()
  let produced: unknown
  try {
    produced = source({ signal: controller.signal })
  } catch (failure) {
    return { iterable: undefined, sync: false, controller, failure }
  }
  try {
    return { iterable: assertIterable(produced), sync: isSync(produced), controller, failure: undefined }
  } catch (err) {
    controller.abort() // the function may have subscribed to something: let it clean up
    throw err
  }
}

function assertIterable (value: unknown): CometIterable<unknown> {
  // Strings and byte arrays are iterable, but as a source they would send one character or one
  // number per message: almost certainly a mistake, so they are refused.
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) &&
      (typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function' ||
       typeof (value as Partial<Iterable<unknown>>)[Symbol.iterator] === 'function')) {
    return value as CometIterable<unknown>
  }
  throw new FST_COMET_INVALID_SOURCE(kindOf(value))
}

function isSync (iterable: unknown): boolean {
  return typeof (iterable as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] !== 'function'
}

function kindOf (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'object') return value.constructor?.name ?? 'object'
  return typeof value
}

/** The iterator behind an iterable, preferring the asynchronous protocol when both exist. */
export function iteratorOf (iterable: CometIterable<unknown>, sync: boolean): CometIterator {
  return sync
    ? (iterable as Iterable<unknown>)[Symbol.iterator]()
    : (iterable as AsyncIterable<unknown>)[Symbol.asyncIterator]()
}
