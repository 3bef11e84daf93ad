// One comet response, top to bottom: headers and padding, the write loop with batching and
// backpressure, heartbeats and limits, and the single place where a stream ends, whatever the reason.
import type { FastifyReply, FastifyBaseLogger } from 'fastify'
import { validateHeaderValue, type ServerResponse } from 'node:http'
import { encodeMessage, encodeId, paddingChunk, scriptPrefix, SCRIPT_SUFFIX } from './encode.js'
import { iteratorOf, type CometIterator, type OpenedSource } from './source.js'
import type { CometSubscriber } from './feed.js'
import type { StreamSettings } from './options.js'

// Scripts are gathered into one write until this many characters are waiting. It matches the
// socket's default high-water mark: big enough to cut syscalls, small enough not to hold memory.
const BATCH_CHARS = 16384

const COMET_HEADERS = {
  'cache-control': 'no-cache, no-store, no-transform, must-revalidate, max-age=0',
  'x-accel-buffering': 'no' // nginx: pass every chunk on at once
}
const CONTENT_TYPE = 'text/html; charset=utf-8'
// Whitespace between scripts is an invisible text node: harmless to the page, traffic to a proxy.
const HEARTBEAT = '\n'

export type EndReason = 'done' | 'client-gone' | 'error' | 'shutdown' | 'max-bytes' | 'max-duration' | 'overflow' | 'head'

/** The open streams of one plugin instance, so that shutdown can end them. */
export type StreamRegistry = Set<CometStream>

export class CometStream implements CometSubscriber {
  private readonly raw: ServerResponse
  private readonly log: FastifyBaseLogger
  private readonly prefix: string
  private readonly settings: StreamSettings
  private readonly registry: StreamRegistry
  private readonly controller: AbortController | undefined
  private readonly startedAt = performance.now()
  private iterator: CometIterator | undefined
  private unsubscribe: (() => void) | undefined
  private heartbeatTimer: NodeJS.Timeout | undefined
  private durationTimer: NodeJS.Timeout | undefined
  /** Encoded scripts waiting for the next write. */
  private pending = ''
  /** UTF-8 size of `pending`, kept only when maxBytes is finite (it costs a count per message). */
  private pendingBytes = 0
  /** Messages in `pending`: a push source may not run further ahead than its queue allows. */
  private queued = 0
  private maxQueue = Infinity
  private messages = 0
  private bytes = 0
  private flushScheduled = false
  /** The last write returned false: write and pull nothing more until 'drain'. */
  private blocked = false
  private ended = false
  private resolveDrain: (() => void) | undefined
  private resolveEnded!: () => void
  readonly done: Promise<void>

  constructor (reply: FastifyReply, settings: StreamSettings, source: OpenedSource, nonce: string | undefined, registry: StreamRegistry) {
    this.raw = reply.raw as ServerResponse
    this.log = reply.log
    this.settings = settings
    this.registry = registry
    this.prefix = scriptPrefix(settings.callback, nonce)
    this.controller = source.controller
    // Until it subscribes, ending the stream must still tell a feed that its consumer is gone.
    const feed = source.feed
    if (feed !== undefined) this.unsubscribe = () => feed.release()
    this.done = new Promise(resolve => { this.resolveEnded = resolve })
    this.onClose = this.onClose.bind(this)
    this.onDrain = this.onDrain.bind(this)

    const raw = this.raw
    // Headers first: Node rejects a malformed one here, while Fastify can still answer with an error.
    setHeaders(raw, reply.getHeaders())
    // From here on Fastify leaves the response to us.
    reply.hijack()
    registry.add(this)
    this.log.debug({ callback: settings.callback, source: source.kind }, 'comet stream opened')
    if (clientGone(raw)) { // the client left before the handler got here
      this.end('client-gone')
      return
    }
    raw.writeHead(raw.statusCode)
    // Node drops the body of a HEAD response without a word; the source would run for nothing.
    if (reply.request.method === 'HEAD') {
      this.end('head')
      return
    }
    // Each script should leave at once, not wait for Nagle's algorithm to fill a packet.
    const socket = raw.socket
    if (typeof socket?.setNoDelay === 'function') socket.setNoDelay(true)
    raw.on('close', this.onClose)
    const padding = paddingChunk(settings.padding)
    this.write(padding, padding.length) // ASCII: one byte a character
    flattenHeaderBlock(raw)
    if (settings.heartbeat > 0) this.heartbeatTimer = setTimeout(beat, settings.heartbeat, this).unref()
    if (settings.maxDuration > 0) this.durationTimer = setTimeout(expire, settings.maxDuration, this).unref()

    if (source.failure !== undefined) {
      this.fail(source.failure)
      return
    }
    if (source.feed !== undefined) {
      this.maxQueue = source.feed.maxQueue
      this.unsubscribe = source.feed.subscribe(this)
      // A feed may end the stream while subscribing (what a push source held overflowed, or it
      // had already ended): tell it now, since end() could not.
      if (this.ended) this.unsubscribe()
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
      if (this.ended) return // this message reached maxBytes
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
      if (this.ended) return
      if (this.pending.length >= BATCH_CHARS) {
        await this.flushAndYield()
        if (this.ended) return
      }
    }
  }

  private push (message: unknown): void {
    this.append(encodeMessage(message), encodeId(this.settings.id, message))
  }

  deliver (encoded: string, encodedId: string | undefined): void {
    if (this.ended) return
    // While the socket takes what we write, the queue is simply written out; it only fills up
    // while the socket is full.
    if (this.queued >= this.maxQueue && !this.blocked) this.flush()
    if (this.queued >= this.maxQueue) return this.overflow()
    this.append(encoded, encodedId)
    // A burst published in one tick is written in batches, not held until the next tick.
    if (!this.blocked && this.pending.length >= BATCH_CHARS) this.flush()
  }

  overflow (): void {
    this.log.warn({ maxQueue: this.maxQueue }, 'comet subscriber fell too far behind: ending its stream so the client reconnects')
    this.end('overflow')
  }

  private append (encoded: string, encodedId: string | undefined): void {
    const script = encodedId === undefined
      ? this.prefix + encoded + SCRIPT_SUFFIX
      : this.prefix + encoded + ',' + encodedId + SCRIPT_SUFFIX
    this.pending += script
    this.messages++
    this.queued++
    // Rotation: end after the message that crosses the limit.
    if (this.settings.maxBytes !== Infinity) {
      this.pendingBytes += Buffer.byteLength(script)
      if (this.bytes + this.pendingBytes >= this.settings.maxBytes) return this.end('max-bytes')
    }
    // A lone message must not wait for a full batch: write it once the current tick's work is done.
    if (!this.flushScheduled) {
      this.flushScheduled = true
      process.nextTick(flushScheduled, this)
    }
  }

  /** Runs on the tick after a push, so messages yielded in one go leave in one write. */
  flushScheduledScripts (): void {
    this.flushScheduled = false
    if (!this.blocked) this.flush()
  }

  private flush (): void {
    if (this.pending === '' || this.ended) return
    const chunk = this.pending
    const bytes = this.settings.maxBytes !== Infinity ? this.pendingBytes : Buffer.byteLength(chunk)
    this.pending = ''
    this.pendingBytes = 0
    this.queued = 0
    this.write(chunk, bytes)
  }

  private write (chunk: string, bytes: number): void {
    this.bytes += bytes
    this.heartbeatTimer?.refresh()
    // Listen for 'drain' at once: waiting for it later could miss it.
    if (!this.raw.write(chunk) && !this.blocked) {
      this.blocked = true
      this.raw.once('drain', this.onDrain)
    }
  }

  // After a full batch, wait for the socket if it is behind; otherwise still let the event loop
  // turn, so a source that never waits cannot starve every other connection.
  private async flushAndYield (): Promise<void> {
    if (!this.blocked) this.flush()
    if (this.blocked) await this.drained()
    else await new Promise(setImmediate)
  }

  private drained (): Promise<void> {
    return new Promise(resolve => { this.resolveDrain = resolve })
  }

  private onDrain (): void {
    this.blocked = false
    this.flush() // what arrived while the socket was full
    if (!this.blocked) this.releaseDrain()
  }

  private releaseDrain (): void {
    const resolve = this.resolveDrain
    this.resolveDrain = undefined
    resolve?.()
  }

  /** Keeps proxies from closing an idle stream; never writes while the socket is full. */
  heartbeat (): void {
    if (!this.blocked) this.write(HEARTBEAT, HEARTBEAT.length)
    else this.heartbeatTimer?.refresh()
  }

  private onClose (): void {
    // 'close' after our own end() is the normal finish; before it, the client went away.
    if (!this.ended) this.end('client-gone')
  }

  /** Ends the stream because its source failed; logged once, as an error of this request. */
  fail (err: unknown): void {
    if (this.ended) return // an aborted source often rejects its pending read: not an error
    this.log.error({ err }, 'comet stream ended: the source failed')
    this.end('error')
  }

  /** Ends the stream once: stops the source, clears timers and listeners, ends the response. */
  end (reason: EndReason): void {
    if (this.ended) return
    if (reason !== 'client-gone') this.flush()
    this.ended = true
    this.registry.delete(this)
    clearTimeout(this.heartbeatTimer)
    clearTimeout(this.durationTimer)
    const raw = this.raw
    raw.removeListener('close', this.onClose)
    raw.removeListener('drain', this.onDrain)
    this.releaseDrain()
    this.controller?.abort()
    this.unsubscribe?.()
    if (reason !== 'done') this.closeIterator()
    if (reason !== 'client-gone') raw.end()
    this.log.debug({
      reason,
      messages: this.messages,
      bytes: this.bytes,
      durationMs: Math.round(performance.now() - this.startedAt)
    }, 'comet stream ended')
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
  const entries = Object.entries(replyHeaders)
  // Validate everything before setting anything, so a bad header leaves the response untouched.
  for (const [name, value] of entries) {
    if (value !== undefined) validateHeaderValue(name, String(value))
  }
  for (const [name, value] of Object.entries(COMET_HEADERS)) raw.setHeader(name, value)
  for (const [name, value] of entries) {
    if (value !== undefined) raw.setHeader(name, value)
  }
  raw.setHeader('content-type', CONTENT_TYPE)
  raw.removeHeader('content-length') // a stream has no length; chunked encoding frames it
}

// An HTTP/2 response has no `destroyed` of its own: its stream has.
function clientGone (raw: ServerResponse): boolean {
  return raw.destroyed === true || (raw as { stream?: { destroyed: boolean } }).stream?.destroyed === true
}

// Node keeps the rendered header block for the whole life of the response, as a string built
// from one piece per header line. ToNumber flattens a string in place (the trick behind pino's
// flatstr), so one copy stays: about 1.2 KB less per open stream with helmet's headers (measured
// with 2,000 idle streams; see BENCHMARKS.md).
function flattenHeaderBlock (raw: ServerResponse): void {
  const header: unknown = (raw as unknown as { _header?: unknown })._header
  // eslint-disable-next-line no-void -- the conversion is the point: it flattens the string
  if (typeof header === 'string') void Number(header)
}

// Module-level callbacks: timers and ticks take the stream as an argument instead of a closure each.
function flushScheduled (stream: CometStream): void {
  stream.flushScheduledScripts()
}

function beat (stream: CometStream): void {
  stream.heartbeat()
}

function expire (stream: CometStream): void {
  stream.end('max-duration')
}

function ignore (): void {}
