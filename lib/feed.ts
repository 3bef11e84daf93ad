// The small interface between push sources (channels, push queues, and later broker-backed
// channels) and the streams that subscribe to them. A feed hands each subscriber messages that are
// already encoded, so a message published to many streams is serialized once.

/** Marks an object as a push source; reply.comet() subscribes to it instead of iterating it. */
export const kCometFeed = Symbol.for('fastify-comet.feed')

/** What a feed sees of one subscribed stream. */
export interface CometSubscriber {
  /** One message and its id (if it has one), each already encoded by encode.ts. */
  deliver (encoded: string, encodedId: string | undefined): void
  /** The feed is over: the stream writes what it has and ends cleanly. */
  end (reason: 'done'): void
  /** The feed held more than maxQueue messages for this subscriber: the stream ends, logged at warn. */
  overflow (): void
  /** The feed failed: the stream logs the error and ends. */
  fail (err: unknown): void
}

export interface CometFeed {
  /** How many messages a subscriber may hold unwritten before it is ended as too slow. */
  readonly maxQueue: number
  /** Starts delivering to `subscriber`; returns the function that stops it. */
  subscribe (subscriber: CometSubscriber): () => void
  /** The stream that opened this feed ended before it could subscribe. */
  release (): void
}

export interface CometFeedSource {
  [kCometFeed] (): CometFeed
}

export function isFeedSource (value: unknown): value is CometFeedSource {
  return value !== null && typeof value === 'object' && typeof (value as Partial<CometFeedSource>)[kCometFeed] === 'function'
}
