// The one way messages reach a stream. Every source becomes a feed: an iterable is pulled by the
// iterator feed in source.ts, channels and push sources deliver what is published. A feed hands the
// stream each message as its finished entry of the wire format, so a message published to many
// streams is serialized, and its entry built, once.

import type { LastEventId } from './last-event-id.js'
import type { Lane } from './multiplex.js'

/** Marks an object as a push source; reply.comet() subscribes to it instead of iterating it. */
export const kCometFeed = Symbol.for('fastify-comet.feed')

/** Why a feed ends its stream: its messages are over, or it held more than its queue allows. */
export type FeedEndReason = 'done' | 'overflow'

/** What a feed sees of the stream it feeds. */
export interface CometSubscriber {
  /** One message's entry, as encode.ts's messageEntry() builds it. Ignored once the stream is over. */
  deliver (entry: string): void
  /**
   * Backpressure, for a feed that can wait: false once the socket is full or a full batch was just
   * written. The feed then waits for `whenReady()` before it delivers more. A feed that cannot
   * wait (a channel) keeps delivering; the stream queues up to `maxQueue` messages for it.
   */
  readonly ready: boolean
  /** Resolves when the socket has drained, or on the next turn of the event loop if it is not full. */
  whenReady (): Promise<void>
  /**
   * A control message for the shipped client, in order with the messages (the comet document's
   * helper hands it to `callback.cometControl(type, detail)`, never to the callback itself).
   */
  control (type: string, detail: Record<string, unknown>): void
  /** The feed is over ('done') or overflowed: the stream writes what it has and ends. */
  end (reason: FeedEndReason): void
  /** The feed failed: the stream logs the error and ends. */
  fail (err: unknown): void
}

export interface CometFeed {
  /** The keys of a multiplexed stream, announced to the client when the document opens. */
  readonly keys?: readonly string[]
  /** A multiplexed stream's lanes, one per key, each queueing against its own maxQueue. */
  readonly lanes?: readonly Lane[]
  /**
   * Messages the stream may hold for this feed while its socket is full before it ends as too slow.
   * Infinity for a feed that waits for `whenReady()` instead.
   */
  readonly maxQueue: number
  /** Starts delivering to the stream. Called at most once, when the stream has started. */
  start (subscriber: CometSubscriber): void
  /** The stream is over, or will never start: stop producing and let go of everything. Idempotent. */
  stop (): void
}

/** What the request tells a feed about the client. */
export interface FeedContext {
  /**
   * The last message id the reconnecting client saw: undefined for none, null for a value that is
   * none of ours (a channel with history answers it with a reset; see last-event-id.ts).
   */
  lastEventId: LastEventId
  /**
   * Only without a lastEventId: the client asks for what was published in the last `since`
   * milliseconds (`?since=`, see last-event-id.ts). Channels with history honour it; other
   * sources start live.
   */
  since?: number
}

export interface CometFeedSource {
  /** Hands out the feed for one stream. */
  [kCometFeed] (context: FeedContext): CometFeed
}

export function isFeedSource (value: unknown): value is CometFeedSource {
  return value !== null && typeof value === 'object' && typeof (value as Partial<CometFeedSource>)[kCometFeed] === 'function'
}
