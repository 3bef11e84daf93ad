// Types of the browser client, `fastify-comet/client` (client/comet-client.js). As a classic
// <script src> it is the global `FastifyComet`; under a bundler, `require('fastify-comet/client')`.
// `import` resolves to comet-client.mjs and its types, comet-client.d.mts, built on these.

declare namespace FastifyComet {
  /** Why a connection ended, as told to `onClose`. */
  export interface CloseInfo {
    /** `ended`: the comet document finished (rotation, server restart, an error page); `error`: the frame reported an error; `closed`: `stream.close()`. */
    reason: 'ended' | 'error' | 'closed'
    /** Messages this connection delivered. */
    messages: number
    /** Connections in a row that ended without a message before this one (0 after a connection that delivered one). */
    attempt: number
    /** Milliseconds until the next connection; undefined after `close()`. */
    delay: number | undefined
  }

  export interface ConnectOptions<T = unknown> {
    /**
     * The global function the route calls: it must stream with callback `'parent.' + callback`.
     * A plain identifier, not yet defined on `window`. Default `'cometMessage'`.
     */
    callback?: string
    /** Each message, with its id when the route gives ids (the `id` option of `reply.comet()`). */
    onMessage: (message: T, id: string | undefined) => void
    /** The first message of each connection (initial or reconnect) has arrived. */
    onOpen?: () => void
    /** A connection ended; unless the reason is `closed`, the next one starts after `info.delay` ms. */
    onClose?: (info: CloseInfo) => void
    /**
     * The channel could not replay what this page missed since `info.lastEventId` (the id is
     * older than its history, or from before a restart): reload the page's state. Messages that
     * follow are live, and the next reconnect resumes from here.
     */
    onReset?: (info: { lastEventId: string | undefined }) => void
    /** Base reconnect delay in milliseconds. Default 500. */
    minDelay?: number
    /** Cap of the reconnect delay in milliseconds. Default 30000. */
    maxDelay?: number
    /** Resume after this id from the first connection on (sent as `?lastEventId=`). */
    lastEventId?: string
  }

  export interface Stream {
    /** Stops for good: no more reconnects or messages, the frame is removed and the global callback deleted. */
    close: () => void
    /** The id of the last message received; sent as `?lastEventId=` on each reconnect. */
    readonly lastEventId: string | undefined
    readonly closed: boolean
  }

  /**
   * Opens the stream in a hidden iframe once the page has loaded, and keeps it open: when the
   * comet document ends or fails, reconnects after `random(0, min(maxDelay, minDelay * 2^attempt))` ms,
   * with `?lastEventId=` set to the last id received. Throws on invalid options.
   */
  export function connect<T = unknown> (url: string, options: ConnectOptions<T>): Stream
}

export = FastifyComet
export as namespace FastifyComet
