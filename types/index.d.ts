// The public type surface of fastify-comet. lib/ imports these declarations and implements them,
// so the compiler keeps the two in step.
import type { FastifyBaseLogger, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { FastifyHelmetOptions } from '@fastify/helmet'

declare module 'fastify' {
  interface FastifyInstance {
    /** Factories for push sources (broadcast channels, single-consumer push queues) and the plugin's counters. */
    comet: fastifyComet.CometFactories
  }

  interface FastifyReply {
    /**
     * Streams `source` to the client as a Comet (forever iframe) document: every message becomes
     * `<script>callback(message);</script>`. Argument errors are thrown synchronously, before anything
     * is written. The promise resolves (never rejects) once the stream is over, whatever ended it.
     */
    comet<T = unknown>(source: fastifyComet.CometSource<T>, callback: string | fastifyComet.CometReplyOptions<T>): Promise<void>
    /**
     * Streams several sources in one document (one connection): each message reaches the page as
     * `callback(message, id, key)`, `id` undefined when its source gives none. Per key: its own order,
     * ids, `maxQueue` and resume (one cursor covers every key); a source that finishes leaves the
     * others streaming, one that fails ends the document. Keys: 1 to 64 of them, each 1 to 64
     * characters of `A-Z a-z 0-9 _ -`.
     */
    comet(sources: fastifyComet.CometSources, callback: string | fastifyComet.CometReplyOptions): Promise<void>
  }
}

type FastifyCometPlugin = FastifyPluginAsync<fastifyComet.FastifyCometOptions>

declare namespace fastifyComet {
  /** Limits and timings every stream has; set plugin-wide at register, or per call. */
  export interface CometStreamOptions {
    /** Bytes of whitespace sent before `<html><body>` so browsers render at once. Default 5120; 0 to 65536. */
    padding?: number
    /**
     * Longest silence, in milliseconds, before a heartbeat script is written (it comes after 3/4 to
     * 1 of it): proxies keep the stream open, and the shipped client, told the period when the
     * document starts, judges a stream silent for three periods lost. Default 20000; 0 turns it off.
     */
    heartbeat?: number
    /** Document size in UTF-8 bytes (padding included) after which the stream ends, after the message that crosses it, so the client reconnects with a fresh document. Default 8388608 (8 MiB); must exceed `padding`; `Infinity` for never. */
    maxBytes?: number
    /**
     * UTF-8 bytes a stream may hold for its client while the socket is full (a channel or push
     * source cannot wait): past it, like past a channel's `maxQueue` messages, the stream is ended
     * as overflowed and logged at warn, so a client that stopped reading costs a bounded amount of
     * memory whatever the size of the messages. Within one burst (before the socket had a turn of
     * the event loop to drain) 4 times as much. Default 8388608 (8 MiB); 1 to 67108864 (64 MiB).
     */
    maxQueueBytes?: number
    /** Milliseconds after which the stream ends so the client reconnects. Default 0 (off). */
    maxDuration?: number
    /**
     * Milliseconds a poll (a request with `?transport=poll`, answered as a document, or as JSON
     * with the request header `Comet-Format: json`) waits for something to deliver before it ends empty; a poll with
     * something ends about 1 ms after its first message. Default 25000; 1 to 2147483647.
     */
    pollTimeout?: number
  }

  /** Options of `fastify.register(fastifyComet, options)`: defaults for every stream, and the plugin's wiring. */
  export interface FastifyCometOptions extends CometStreamOptions {
    /** Serve the browser client (`fastify-comet/client`) at this path, e.g. `/comet/client.js`. Off by default. */
    clientPath?: string
    /**
     * `@fastify/helmet` options merged over the plugin's (X-Frame-Options SAMEORIGIN, CSP with
     * `connect-src 'self'`, `frame-ancestors 'self'` and nonces), or `false` to leave security
     * headers to the application. Ignored when the application registered `@fastify/helmet` first.
     */
    helmet?: FastifyHelmetOptions | false
    /**
     * Streams this instance keeps open at once. Past it, `reply.comet()` throws
     * `FST_COMET_TOO_MANY_STREAMS` (503, with `Retry-After`) before anything is written, and the
     * source is released. Default `Infinity` (no limit); a whole number from 1.
     */
    maxStreams?: number
    /** Seconds sent in `Retry-After` with a refusal past `maxStreams`. Default 5; 0 to 86400. */
    retryAfter?: number
    /**
     * Shares named channels with every instance that uses the same broker, e.g. `cometRedis()` from
     * `fastify-comet/redis`. Named channels then need a `history`; unnamed ones stay in process.
     */
    broker?: CometBroker
  }

  /** Shares named channels between instances; made by `cometRedis()` (`fastify-comet/redis`). */
  export interface CometBroker {
    /** Called once by the plugin when it is registered; resolves once the broker is connected (or has waited long enough). */
    connect (log: FastifyBaseLogger): Promise<{ close (): void }>
  }

  /** Options of one `reply.comet()` call; the stream options override the plugin's. */
  export interface CometReplyOptions<T = unknown> extends CometStreamOptions {
    /** The function the browser calls with each message: a dotted identifier path such as `parent.cometMessage`. */
    callback: string
    /** Gives a message its id: the script becomes `callback(message, "id")` and a reconnecting client resumes after it. */
    id?: (message: T) => string | undefined
  }

  /** What a source function receives. */
  export interface CometSourceContext {
    /** Aborts when the stream ends for any reason (client gone, failure, shutdown, limits). */
    signal: AbortSignal
    /**
     * The last message id the reconnecting client saw (`?lastEventId=` or `Last-Event-ID`), validated: at most 256 printable ASCII characters.
     * (`?since=` is not passed on: a channel with history the function returns answers it.)
     */
    lastEventId: string | undefined
  }

  /** Options of a push source. */
  export interface CometPushOptions<T = unknown> {
    /** Messages a subscriber may hold unwritten (its client reads too slowly) before its stream is ended and logged at warn. Default 1024. */
    maxQueue?: number
    /** Gives a message its id, so that a reconnecting client can resume after it. */
    id?: (message: T) => string | undefined
  }

  /** Options of a channel. */
  export interface CometChannelOptions<T = unknown> extends CometPushOptions<T> {
    /** The same name in one instance gives back the same channel (other options for it: FST_COMET_INVALID_OPTION). */
    name?: string
    /**
     * Keep the last `history` messages and give every message an id (then `id` is refused):
     * a reconnecting client gets exactly what it missed, or a reset. Default 0 (none).
     */
    history?: number
    /**
     * With `history`: milliseconds a message is kept. An older one leaves the history, so a client
     * that missed it gets a reset; a named channel left with no subscribers and no message to keep
     * is let go (the name starts afresh, with a new epoch). Default 0 (no age limit); at most
     * 2147483647.
     */
    historyTtl?: number
  }

  /** Options of a channel that keeps a history. */
  export interface CometHistoryChannelOptions extends Omit<CometChannelOptions, 'id' | 'history'> {
    history: number
  }

  /**
   * Broadcast: `reply.comet(channel, callback)` subscribes a response until it ends, `publish()`
   * sends a message, encoded once, to every subscriber.
   */
  export class CometChannel<T = unknown> {
    constructor (options?: CometChannelOptions<T>)
    /** How many streams are subscribed. */
    readonly size: number
    /** Sends `message` to every subscriber; throws FST_COMET_UNSERIALIZABLE_MESSAGE, delivering nothing, when JSON cannot represent it. */
    publish (message: T): void
    /** The id of the newest message (with history; see CometHistoryChannel); undefined without history. */
    position (): Promise<string | undefined>
    /** Ends every subscriber's stream cleanly; later subscribers end at once. */
    close (): void
  }

  /**
   * A channel with history: it gives every message an id, and a client that reconnects with its
   * last id (`?lastEventId=` or `Last-Event-ID`) gets every message after it, then the live ones,
   * each once and in order; if that id is out of reach, a `reset` control message first. A client
   * with no id may send `?since=MS` instead: it gets what was published in the last MS
   * milliseconds (by the server's clock, Redis's with the broker), then the live ones; a reset if
   * some of that is no longer held.
   */
  export interface CometHistoryChannel<T = unknown> extends Omit<CometChannel<T>, 'publish' | 'position'> {
    /** Stores and sends `message`; resolves with its id. Throws FST_COMET_UNSERIALIZABLE_MESSAGE synchronously. */
    publish (message: T): Promise<string>
    /**
     * A cursor at render: the id of the channel's newest message (for an empty channel, one that
     * replays from its first message). A page rendered with it and connected with it as
     * `lastEventId` receives everything published after the render, exactly once.
     */
    position (): Promise<string>
  }

  /** A single-consumer push source for callback-style code: `reply.comet(out, callback)`. */
  export class CometPush<T = unknown> {
    constructor (options?: CometPushOptions<T>)
    /** Aborts when the consuming stream has ended. */
    readonly signal: AbortSignal
    /** Queues a message; false once pushing is pointless: the stream is over, or more than `maxQueue` messages wait for it to start. */
    push (message: T): boolean
    /** Ends the stream cleanly once what was pushed is written. */
    end (): void
    /** Ends the stream as failed; the error is logged through the request's logger. */
    error (err: unknown): void
  }

  export interface CometFactories {
    channel<T = unknown>(options: CometHistoryChannelOptions): CometHistoryChannel<T>
    channel<T = unknown>(options?: CometChannelOptions<T>): CometChannel<T>
    push<T = unknown>(options?: CometPushOptions<T>): CometPush<T>
    /** A fresh snapshot of this instance's counters; cheap enough to call on every metrics scrape. */
    stats(): CometStats
  }

  /** Why a stream ended. */
  export type CometEndReason = 'done' | 'client-gone' | 'error' | 'shutdown' | 'max-bytes' | 'max-duration' | 'overflow' | 'head' | 'poll'

  /** What `fastify.comet.stats()` returns: plain numbers, counted since the plugin was registered. */
  export interface CometStats {
    streams: {
      /** Streams open now. */
      open: number
      /** Streams started since registration (those refused by `maxStreams` are not). */
      opened: number
      /** Streams ended since registration, in total and by reason. */
      ended: number
      endReasons: Record<CometEndReason, number>
      /** Calls to `reply.comet()` refused with `FST_COMET_TOO_MANY_STREAMS`. */
      refused: number
    }
    /** Messages handed to streams, open and ended. */
    messages: number
    /** Bytes written to comet responses (padding, scripts and heartbeats), open and ended streams. */
    bytes: number
    channels: {
      /** Channels made by `fastify.comet.channel()` that are neither closed nor garbage-collected. */
      open: number
      /** Streams subscribed to those channels now. */
      subscribers: number
    }
  }

  /** Published on `node:diagnostics_channel` `fastify-comet:stream:open` once a stream has taken its response over. */
  export interface CometStreamOpenMessage {
    request: FastifyRequest
    reply: FastifyReply
  }

  /** Published on `node:diagnostics_channel` `fastify-comet:stream:end`, once per stream, whatever ended it. */
  export interface CometStreamEndMessage extends CometStreamOpenMessage {
    reason: CometEndReason
    /** Messages handed to the stream. */
    messages: number
    /** Bytes written, padding and heartbeats included. */
    bytes: number
    /** Whole milliseconds from the start of the stream to its end. */
    durationMs: number
  }

  /** Anything that yields messages: async generators, Node `Readable`, web `ReadableStream`, arrays, generators. */
  export type CometIterable<T> = AsyncIterable<T> | Iterable<T>

  /** An iterable of messages, or a function that receives `{ signal }` and returns one. */
  export type CometSource<T = unknown> =
    | CometIterable<T>
    | CometChannel<T>
    | CometHistoryChannel<T>
    | CometPush<T>
    | ((context: CometSourceContext) => CometIterable<T> | CometChannel<T> | CometHistoryChannel<T> | CometPush<T>)

  /** Several sources in one stream, by key: `{ chat: room, clock: ({ signal }) => ticks(signal) }`. */
  export type CometSources = Record<string, CometSource<any>>

  export const fastifyComet: FastifyCometPlugin
  export { fastifyComet as default }
}

declare function fastifyComet (...params: Parameters<FastifyCometPlugin>): ReturnType<FastifyCometPlugin>
export = fastifyComet
