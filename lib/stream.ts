// One comet response, top to bottom: headers and padding, the write loop with batching and
// backpressure, and the single place where a stream ends, whatever the reason.
import type { FastifyReply, FastifyBaseLogger } from 'fastify'
import type { ServerResponse } from 'node:http'
import { encodeMessage, paddingChunk, scriptPrefix, SCRIPT_SUFFIX } from './encode.js'
import { iteratorOf, type CometIterator, type OpenedSource } from './source.js'
import type { StreamSettings } from './options.js'

// Scripts are gathered into one write until this many characters are waiting. It matches the
// socket's default high-water mark: big enough to cut syscalls, small enough not to hold memory.
const BATCH_CHARS = 16384

const COMET_HEADERS = {
  'cache-control': 'no-cache, no-store, no-transform, must-revalidate, max-age=0',
  'x-accel-buffering': 'no' // nginx: pass every chunk on at once
}
const CONTENT_TYPE = 'text/html; charset=utf-8'

export type EndReason = 'done' | 'client-gone' | 'error'

export class CometStream {
  private readonly raw: ServerResponse
  private readonly log: FastifyBaseLogger
  private readonly prefix: string
  private readonly controller: AbortController | undefined
  private iterator: CometIterator | undefined
  /** Encoded scripts waiting for the next write. */
  private pending = ''
  private flushQueued = false
  /** The last write returned false: pull nothing more until 'drain'. */
  private blocked = false
  private ended = false
  private resolveDrain: (() => void) | undefined
  private resolveEnded!: () => void
  readonly done: Promise<void>

  constructor (reply: FastifyReply, settings: StreamSettings, source: OpenedSource, nonce: string | undefined) {
    this.raw = reply.raw as ServerResponse
    this.log = reply.log
    this.prefix = scriptPrefix(settings.callback, nonce)
    this.controller = source.controller
    this.done = new Promise(resolve => { this.resolveEnded = resolve })
    this.onClose = this.onClose.bind(this)
    this.onDrain = this.onDrain.bind(this)

    const raw = this.raw
    // Headers first: Node rejects a malformed one here, while Fastify can still answer with an error.
    setHeaders(raw, reply.getHeaders())
    // From here on Fastify leaves the response to us.
    reply.hijack()
    if (raw.destroyed) { // the client left before the handler got here
      this.end('client-gone')
      return
    }
    raw.writeHead(raw.statusCode)
    // Each script should leave at once, not wait for Nagle's algorithm to fill a packet.
    const socket = raw.socket
    if (typeof socket?.setNoDelay === 'function') socket.setNoDelay(true)
    raw.on('close', this.onClose)
    raw.write(paddingChunk(settings.padding))

    if (source.iterable === undefined) {
      this.fail(source.failure)
      return
    }
    try {
      this.iterator = iteratorOf(source.iterable, source.sync)
    } catch (err) {
      this.fail(err)
      return
    }
    const pumping = source.sync ? this.pumpSync(this.iterator as Iterator<unknown>) : this.pump(this.iterator as AsyncIterator<unknown>)
    pumping.then(undefined, err => this.fail(err))
  }

  // Asynchronous sources: one await per message (the iterator's own), no race against 'close':
  // cancellation reaches the source through its AbortSignal and iterator.return().
  private async pump (iterator: AsyncIterator<unknown>): Promise<void> {
    for (;;) {
      const result = await iterator.next()
      if (this.ended) return
      if (result.done === true) return this.end('done')
      this.push(result.value)
      if (this.pending.length >= BATCH_CHARS) await this.flushAndYield()
      else if (this.blocked) await this.drained() // a queued flush filled the socket
      if (this.ended) return
    }
  }

  // Synchronous sources are pulled without awaiting, one batch at a time.
  private async pumpSync (iterator: Iterator<unknown>): Promise<void> {
    for (;;) {
      const result = iterator.next()
      if (result.done === true) return this.end('done')
      this.push(result.value)
      if (this.pending.length >= BATCH_CHARS) {
        await this.flushAndYield()
        if (this.ended) return
      }
    }
  }

  private push (message: unknown): void {
    this.pending += this.prefix + encodeMessage(message) + SCRIPT_SUFFIX
    // A lone message must not wait for a full batch: write it once the current tick's work is done.
    if (!this.flushQueued) {
      this.flushQueued = true
      process.nextTick(flushQueued, this)
    }
  }

  /** Runs on the tick after a push, so messages yielded in one go leave in one write. */
  flushQueuedScripts (): void {
    this.flushQueued = false
    this.flush()
  }

  private flush (): void {
    if (this.pending === '' || this.ended) return
    const chunk = this.pending
    this.pending = ''
    // Listen for 'drain' at once: waiting for it later could miss it.
    if (!this.raw.write(chunk) && !this.blocked) {
      this.blocked = true
      this.raw.once('drain', this.onDrain)
    }
  }

  // After a full batch, wait for the socket if it is behind; otherwise still let the event loop
  // turn, so a source that never waits cannot starve every other connection.
  private async flushAndYield (): Promise<void> {
    this.flush()
    if (this.blocked) await this.drained()
    else await new Promise(setImmediate)
  }

  private drained (): Promise<void> {
    return new Promise(resolve => { this.resolveDrain = resolve })
  }

  private onDrain (): void {
    this.blocked = false
    this.releaseDrain()
  }

  private releaseDrain (): void {
    const resolve = this.resolveDrain
    this.resolveDrain = undefined
    resolve?.()
  }

  private onClose (): void {
    // 'close' after our own end() is the normal finish; before it, the client went away.
    if (!this.ended) this.end('client-gone')
  }

  private fail (err: unknown): void {
    if (this.ended) return // an aborted source often rejects its pending read: not an error
    this.log.error({ err }, 'comet stream ended: the source failed')
    this.end('error')
  }

  /** Ends the stream once: stops the source, removes our listeners, ends the response. */
  end (reason: EndReason): void {
    if (this.ended) return
    if (reason !== 'client-gone') this.flush()
    this.ended = true
    const raw = this.raw
    raw.removeListener('close', this.onClose)
    raw.removeListener('drain', this.onDrain)
    this.releaseDrain()
    this.controller?.abort()
    if (reason !== 'done') this.closeIterator()
    if (reason !== 'client-gone') raw.end()
    this.resolveEnded()
  }

  // return() runs the source's finally blocks; it may throw or reject, which is of no interest now.
  private closeIterator (): void {
    const iterator = this.iterator
    if (iterator?.return === undefined) return
    try {
      const closing = iterator.return()
      if (closing instanceof Promise) closing.then(undefined, ignore)
    } catch {}
  }
}

// Our defaults, then whatever the application set on the reply (CORS, cookies, its own caching
// policy), then what the protocol cannot do without.
function setHeaders (raw: ServerResponse, replyHeaders: ReturnType<FastifyReply['getHeaders']>): void {
  for (const [name, value] of Object.entries(COMET_HEADERS)) raw.setHeader(name, value)
  for (const [name, value] of Object.entries(replyHeaders)) {
    if (value !== undefined) raw.setHeader(name, value)
  }
  raw.setHeader('content-type', CONTENT_TYPE)
  raw.removeHeader('content-length') // a stream has no length; chunked encoding frames it
}

function flushQueued (stream: CometStream): void {
  stream.flushQueuedScripts()
}

function ignore (): void {}
