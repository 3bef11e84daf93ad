// Types of the browser client, `fastify-comet/client` (client/comet-client.js). As a classic
// <script src> it is the global `FastifyComet`; under a bundler, `require('fastify-comet/client')`.
// `import` resolves to comet-client.mjs and its types, comet-client.d.mts, built on these.

declare namespace FastifyComet {
  /** Why a connection ended, as told to `onClose`. */
  export interface CloseInfo {
    /**
     * `rotated`: the server replaced a full document (maxBytes, maxDuration) and the next one opens
     * at once; `ended`: the comet document finished otherwise (server shutdown, an error page);
     * `error`: the frame reported an error; `timeout`: nothing arrived within `connectTimeout`
     * (a refused connection in Firefox, a server that does not answer); `lost`: the stream
     * stayed silent for three of the heartbeat periods its server announced (a connection cut
     * off mid-stream, which browsers do not report); `closed`: `stream.close()`.
     * With transport `'auto'`: `buffered`: a stream delivered nothing within `probeTimeout` (a hop
     * holds it back), polls follow at once; `upgrade`: after a while of polling, a stream is tried.
     */
    reason: 'rotated' | 'ended' | 'error' | 'timeout' | 'lost' | 'closed' | 'buffered' | 'upgrade'
    /** The transport of the connection that ended. Polls that follow one another are one connection. */
    transport: Transport
    /** Messages this connection delivered. */
    messages: number
    /** Connections in a row that ended early before this one; 0 after a rotation or a connection open for 10 s or more. */
    attempt: number
    /** Milliseconds until the next connection; undefined after `close()`. */
    delay: number | undefined
  }

  /**
   * Where a page is in a stream, sent back as `?lastEventId=` on reconnect: the last id of a
   * single-source stream, or for a stream of several sources (`reply.comet({ chat, alerts })`)
   * an object of key -> last id, sent as its JSON text.
   */
  export type Cursor = string | Record<string, string>

  /** How messages arrive: a forever document (`stream`), or short polls one after another (`poll`: fetch()es of JSON, or documents where fetch is missing). */
  export type Transport = 'stream' | 'poll'

  /** What `onReset` is told: the key (several sources only) whose messages after `lastEventId` are lost. */
  export interface ResetInfo {
    /** The key whose position was out of reach; undefined for a single-source stream. */
    key?: string
    lastEventId: string | undefined
  }

  export interface ConnectOptions<T = unknown> {
    /**
     * The global function the route calls: it must stream with callback `'parent.' + callback`.
     * A plain identifier, not yet defined on `window`. Default `'cometMessage'`.
     */
    callback?: string
    /**
     * Each message, with its id when the route gives ids (a channel with history, the `id` option of
     * `reply.comet()`), and its key when the route streams several sources (undefined otherwise).
     */
    onMessage: (message: T, id: string | undefined, key: string | undefined) => void
    /** The first message of each connection (initial or reconnect) has arrived. */
    onOpen?: () => void
    /** A connection ended; unless the reason is `closed`, the next one starts after `info.delay` ms. */
    onClose?: (info: CloseInfo) => void
    /**
     * The channel (of `info.key`, in a stream of several sources) could not replay what this page
     * missed since `info.lastEventId` (the id is older than its history, or from before a
     * restart): reload that state. Messages that follow are live, and the next reconnect resumes
     * from here.
     */
    onReset?: (info: ResetInfo) => void
    /** Base reconnect delay in milliseconds. Default 500. */
    minDelay?: number
    /** Cap of the reconnect delay in milliseconds. Default 30000. */
    maxDelay?: number
    /**
     * Milliseconds a connection may take to deliver its first script (the document's start)
     * before it is given up and retried with the backoff: a refused connection in Firefox, a
     * server or proxy that never answers. More than 0. Default 15000.
     */
    connectTimeout?: number
    /**
     * Start after this cursor (a page rendered with `channel.position()`): an id, or for a stream
     * of several sources `{ key: id }` (keys left out start live). Sent as `?lastEventId=`.
     */
    lastEventId?: Cursor
    /**
     * Share one connection with the other tabs and frames of this origin that connect to the same
     * URL with the same callback (default true; without BroadcastChannel, each has its own). One
     * tab holds it and hands every message, control message, onOpen and onClose to the others, in
     * its order; when it goes, another takes over from the newest ids it has seen. A tab with a
     * `lastEventId` of its own first catches up on a connection of its own.
     */
    shared?: boolean
    /**
     * `'auto'` (default): stream, and where a stream delivers nothing within `probeTimeout` (a
     * proxy or scanner that buffers whole responses), poll instead, trying a stream again after a
     * minute, then less and less often (up to every ten minutes) while streams stay held back.
     * `'stream'` or `'poll'`: that transport only.
     */
    transport?: 'auto' | Transport
    /**
     * With transport `'auto'`: milliseconds a stream may take to deliver its first script (the
     * server writes it at once) before it is taken as held back. At most `connectTimeout`. More
     * than 0. Default 3000.
     */
    probeTimeout?: number
  }

  export interface Stream {
    /**
     * Stops for good in this tab: no more reconnects or messages, the frame (if this tab held the
     * shared connection, another tab takes it over) and the global callback go.
     */
    close: () => void
    /**
     * The cursor sent as `?lastEventId=` on each reconnect: the id of the last message received,
     * or for a stream of several sources a copy of `{ key: last id }`.
     */
    readonly lastEventId: Cursor | undefined
    /** How this tab's messages arrive now (a tab sharing another's connection: that connection's). */
    readonly transport: Transport
    readonly closed: boolean
  }

  /**
   * Opens the stream in a hidden iframe once the page has loaded, and keeps it open: when the
   * comet document ends or fails, or delivers nothing within `connectTimeout`, or stays silent for
   * three of its server's heartbeat periods, reconnects after
   * `random(0, min(maxDelay, minDelay * 2^attempt))` ms (at once after a rotation), minDelay more
   * than 0, with `?lastEventId=` set to the last id received (the JSON cursor of one id per key for
   * a stream of several sources), and `?since=` for what that cursor has no position for. Falls
   * back to polling behind a buffering hop (see `transport`). Shared by the tabs of the origin
   * unless `shared: false`.
   * Throws on invalid options.
   */
  export function connect<T = unknown> (url: string, options: ConnectOptions<T>): Stream
}

export = FastifyComet
export as namespace FastifyComet
