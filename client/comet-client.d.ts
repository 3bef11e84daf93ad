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
     */
    reason: 'rotated' | 'ended' | 'error' | 'timeout' | 'lost' | 'closed'
    /** Messages this connection delivered. */
    messages: number
    /** Connections in a row that ended early before this one; 0 after a rotation or a connection open for 10 s or more. */
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
    /**
     * Milliseconds a connection may take to deliver its first script (the document's start)
     * before it is given up and retried with the backoff: a refused connection in Firefox, a
     * server or proxy that never answers. More than 0. Default 15000.
     */
    connectTimeout?: number
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
   * comet document ends or fails, or delivers nothing within `connectTimeout`, or stays silent for
   * three of its server's heartbeat periods, reconnects after
   * `random(0, min(maxDelay, minDelay * 2^attempt))` ms (at once after a rotation), minDelay more
   * than 0, with `?lastEventId=` set to the last id received. Throws on invalid options.
   */
  export function connect<T = unknown> (url: string, options: ConnectOptions<T>): Stream
}

export = FastifyComet
export as namespace FastifyComet
