// The public type surface of fastify-comet. lib/ imports these declarations and implements them,
// so the compiler keeps the two in step.
import type { FastifyPluginAsync } from 'fastify'
import type { FastifyHelmetOptions } from '@fastify/helmet'

declare module 'fastify' {
  interface FastifyReply {
    /**
     * Streams `source` to the client as a Comet (forever iframe) document: every message becomes
     * `<script>callback(message);</script>`. Argument errors are thrown synchronously, before anything
     * is written. The promise resolves (never rejects) once the stream is over, whatever ended it.
     */
    comet<T = unknown>(source: fastifyComet.CometSource<T>, callback: string | fastifyComet.CometReplyOptions): Promise<void>
  }
}

type FastifyCometPlugin = FastifyPluginAsync<fastifyComet.FastifyCometOptions>

declare namespace fastifyComet {
  /** Options of `fastify.register(fastifyComet, options)`: defaults for every stream. */
  export interface FastifyCometOptions {
    /** Bytes of whitespace sent before `<html><body>` so browsers render at once. Default 5120; 0 to 65536. */
    padding?: number
    /**
     * `@fastify/helmet` options merged over the plugin's (X-Frame-Options SAMEORIGIN, CSP with
     * `connect-src 'self'`, `frame-ancestors 'self'` and nonces), or `false` to leave security
     * headers to the application. Ignored when the application registered `@fastify/helmet` first.
     */
    helmet?: FastifyHelmetOptions | false
  }

  /** Options of one `reply.comet()` call. */
  export interface CometReplyOptions {
    /** The function the browser calls with each message: a dotted identifier path such as `parent.cometMessage`. */
    callback: string
    /** Overrides the plugin's `padding` for this stream. */
    padding?: number
  }

  /** What a source function receives. */
  export interface CometSourceContext {
    /** Aborts when the stream ends for any reason (client gone, failure, shutdown). */
    signal: AbortSignal
  }

  /** Anything that yields messages: async generators, Node `Readable`, web `ReadableStream`, arrays, generators. */
  export type CometIterable<T> = AsyncIterable<T> | Iterable<T>

  /** An iterable of messages, or a function that receives `{ signal }` and returns one. */
  export type CometSource<T = unknown> = CometIterable<T> | ((context: CometSourceContext) => CometIterable<T>)

  export const fastifyComet: FastifyCometPlugin
  export { fastifyComet as default }
}

declare function fastifyComet (...params: Parameters<FastifyCometPlugin>): ReturnType<FastifyCometPlugin>
export = fastifyComet
