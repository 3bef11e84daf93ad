// One comet response, top to bottom: the head and padding, batching and backpressure, heartbeats
// and limits, and the single place where a stream ends, whatever the reason.
import type { FastifyBaseLogger, FastifyReply } from 'fastify'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { BATCH_SUFFIX, batchPrefix, controlEntry, heartbeatScript, jsonEntry, openEntry, paddingChunk } from './encode.js'
import type { CometFeed, CometSubscriber, FeedEndReason } from './feed.js'
import { logFailure } from './log.js'
import { abortResponse, clientGone } from './transport.js'
import type { StreamSettings } from './options.js'
import { releaseSentHead, writeResponseHead, type ResponseHead } from './response-head.js'
import type { OpenStreams } from './open-streams.js'
import { HeartbeatClock, type Beating } from './heartbeat.js'
import { POLL_GATHER_MS, type Poll } from './poll.js'
import type { Lane, LaneTarget } from './multiplex.js'

// Entries are gathered into one write (one script element) until this many characters are
// waiting. It matches the socket's default high-water mark: big enough to cut syscalls and script
// elements, small enough not to hold memory.
export const BATCH_CHARS = 16384
const BATCH_SUFFIX_BYTES = BATCH_SUFFIX.length // ASCII
// Within one burst a subscriber may hold this many times its maxQueue (and maxQueueBytes) before
// its socket had a chance to drain: memory stays bounded, and a broker handing over a batch does
// not cut off subscribers that keep up.
const BURST_CEILING = 4
// How long an ended response may take to flush before its connection is destroyed: a client
// that stopped reading must not keep fastify.close() (or the socket) waiting for ever.
const END_GRACE_MS = 2000

export type EndReason = FeedEndReason | 'client-gone' | 'error' | 'shutdown' | 'max-bytes' | 'max-duration' | 'head' | 'poll'

// What the last script of an ending document tells the shipped client: a full document is
// replaced at once; a server going away or a client left behind comes back later, with jitter.
const RECONNECT_NOW = { delay: 0 }
const RECONNECT_LATER = { delay: 'backoff' }
const RECONNECT: Partial<Record<EndReason, Record<string, unknown>>> = {
  'max-bytes': RECONNECT_NOW,
  'max-duration': RECONNECT_NOW,
  poll: RECONNECT_NOW,
  shutdown: RECONNECT_LATER,
  overflow: RECONNECT_LATER
}
// A JSON poll's end means "poll again at once" by itself (fetch() sees it end): it says so only
// when the client should wait instead, which is whenever a document would not say "now". A
// response with no body to write (HEAD, a client gone) says nothing.
function jsonReconnect (reason: EndReason): Record<string, unknown> | undefined {
  return RECONNECT[reason] === RECONNECT_NOW || !hasBody(reason) ? undefined : RECONNECT_LATER
}

function hasBody (reason: EndReason): boolean {
  return reason !== 'head' && reason !== 'client-gone'
}

// Node's response and request carry their stream, so one shared listener serves every stream
// instead of a bound function each.
const kStream = Symbol('fastify-comet.stream')
type Carrier = { [kStream]?: CometStream }

export class CometStream implements CometSubscriber, LaneTarget, Beating {
  readonly #raw: ServerResponse
  readonly #request: IncomingMessage
  readonly #log: FastifyBaseLogger
  readonly #feed: CometFeed
  readonly #streams: OpenStreams
  // Set by start(). Per stream, only what the write path reads: the settings object and the
  // opening tag of each write are not kept (an idle stream pays for every field it holds).
  #maxBytes = Infinity
  #maxQueueBytes = Infinity
  #nonce: string | undefined
  /** performance.now() at start, in whole milliseconds: a small integer, not a boxed double. */
  #startedAt = 0
  #heartbeat: HeartbeatClock | undefined
  /** Set while the response is pipelined behind another: it begins once Node hands it the socket. */
  #queuedSettings: StreamSettings | undefined
  /** Ticks of the heartbeat clock since the last write. */
  #silentTicks = 0
  /** maxDuration's timer; for a poll, its timeout, then the end of its gathering. */
  #durationTimer: NodeJS.Timeout | undefined
  /** A poll that has delivered nothing yet: the first thing it delivers starts its gathering. */
  #pollWaiting = false
  /** What the client asked for when this is a poll (poll.ts). */
  #poll: Poll | undefined
  /**
   * The next write, and how many messages it holds: an open script element (entries, no suffix
   * yet), or for a JSON poll its next piece of the array.
   */
  #pending = ''
  #pendingMessages = 0
  /** Writes of batches so far: a lane's count of pending messages is good until the next one. */
  #writes = 0
  /** The lane whose key the open batch last switched to (a multiplexed stream): compared by identity. */
  #batchLane: Lane | undefined
  /** The lane whose feed overflowed, for the warning. */
  #overflowLane: Lane | undefined
  /**
   * UTF-8 size of `pending`, counted only when a limit reads it (a count per message): always with
   * a finite maxBytes, else what arrives while the socket is full (the queue maxQueueBytes bounds).
   */
  #pendingBytes = 0
  #messages = 0
  #bytes = 0
  #flushOnTick = false
  /** The last write returned false: write nothing more until 'drain'. */
  #blocked = false
  /** Blocked for a whole turn of the event loop: a feed's queue now counts against maxQueue. */
  #behind = false
  /** A full batch was just written: a pulled source lets the event loop turn before the next. */
  #yieldDue = false
  #ended = false
  #whenReady: Promise<void> | undefined
  #resolveReady: (() => void) | undefined
  #resolveDone!: () => void
  /** Resolves once the stream is over, whatever ended it; never rejects. */
  readonly done: Promise<void>

  /** Builds the stream; nothing is written and no user code runs until start(). */
  constructor (reply: FastifyReply, feed: CometFeed, streams: OpenStreams) {
    this.#raw = reply.raw as ServerResponse
    this.#request = reply.request.raw as IncomingMessage
    this.#log = reply.log
    this.#feed = feed
    this.#streams = streams
    this.done = new Promise(resolve => { this.#resolveDone = resolve })
  }

  /**
   * Takes the response over from Fastify, writes the head, then begins (padding, feed) at once,
   * or once the response owns the socket. A poll (see poll.ts) has no padding (it is for renderers
   * of a forever document) and no heartbeats: its end tells the client that it is alive.
   * `poll`: undefined for a stream.
   */
  start (reply: FastifyReply, head: ResponseHead, settings: StreamSettings, nonce: string | undefined, poll?: Poll): void {
    const raw = this.#raw
    this.#maxBytes = settings.maxBytes
    this.#maxQueueBytes = settings.maxQueueBytes
    this.#nonce = nonce
    this.#pollWaiting = poll !== undefined
    this.#poll = poll
    reply.hijack()
    this.#startedAt = Math.floor(performance.now())
    this.#streams.add(this, reply)
    if (clientGone(raw)) return this.end('client-gone') // the client left before the handler got here
    writeResponseHead(raw, head)
    // Node drops the body of a HEAD response without a word; the source would run for nothing.
    if (reply.request.method === 'HEAD') return this.end('head')
    const carrier = raw as Carrier
    carrier[kStream] = this
    ;(this.#request as Carrier)[kStream] = this
    raw.on('close', onResponseClose)
    // A pipelined request whose response waits behind another never gets that 'close': its
    // request does, when the connection goes.
    this.#request.on('close', onRequestClose)
    // Pipelined behind another response (HTTP/1 only: Node assigns the socket later). What it
    // wrote now would wait in Node's buffer, and past the socket's high-water mark Node stops
    // reading the connection, so a client that leaves would go unnoticed: nothing is written, no
    // source pulled and no channel joined until the socket is this response's.
    if (raw.socket === null) {
      // Its connection went before the handler got here: neither 'socket' nor 'close' will come.
      if (this.#request.socket.destroyed) return this.end('client-gone')
      this.#queuedSettings = settings
      raw.once('socket', onSocket)
      return
    }
    this.#begin(settings)
  }

  /** Node handed the socket to this queued response. */
  socketAssigned (): void {
    const settings = this.#queuedSettings as StreamSettings
    this.#queuedSettings = undefined
    this.#begin(settings)
  }

  /** Writes the padding, sets the timers and starts the feed: the response owns the socket. */
  #begin (settings: StreamSettings): void {
    const raw = this.#raw
    // Each script should leave at once, not wait for Nagle's algorithm to fill a packet.
    const socket = raw.socket
    if (typeof socket?.setNoDelay === 'function') socket.setNoDelay(true)
    const poll = this.#poll
    const heartbeat = poll === undefined ? settings.heartbeat : 0
    if (poll?.json !== true) {
      const padding = paddingChunk(poll === undefined ? settings.padding : 0, settings.callback, heartbeat, this.#nonce, this.#feed.keys, poll?.timeout)
      this.#write(padding, padding.length) // ASCII: one byte a character
      releaseSentHead(raw) // it went out with the padding
    } else if (poll.wait === 0) {
      // The client's first JSON poll of a series: it learns what a document's first script says.
      this.#append(openEntry(0, this.#feed.keys, poll.timeout))
    }
    if (heartbeat > 0) {
      this.#heartbeat = HeartbeatClock.of(heartbeat)
      this.#heartbeat.add(this)
    }
    if (poll !== undefined) {
      // Held (not unref'd): this timer is how a poll ends, and a poll may have no socket to keep
      // the process alive meanwhile (inject). Shutdown ends polls, and clears it, at once.
      this.#durationTimer = setTimeout(endPoll, poll.wait, this)
    } else if (settings.maxDuration > 0) {
      this.#durationTimer = setTimeout(expire, settings.maxDuration, this).unref()
    }
    // Started while the server shuts down: an empty document, and the client reconnects elsewhere.
    if (this.#streams.closing) return this.end('shutdown')
    this.#feed.start(this)
  }

  /** A JSON poll (poll.ts): its body is one JSON array of entries, not script elements. */
  get #json (): boolean {
    return this.#poll?.json === true
  }

  /** Messages handed to this stream so far; read by stats(). */
  get messages (): number {
    return this.#messages
  }

  /** Bytes written so far, padding and heartbeats included; read by stats(). */
  get bytes (): number {
    return this.#bytes
  }

  get ready (): boolean {
    return !this.#blocked && !this.#yieldDue && !this.#ended
  }

  whenReady (): Promise<void> {
    if (this.#whenReady === undefined) {
      this.#whenReady = new Promise(resolve => { this.#resolveReady = resolve })
      // Not blocked: only a turn of the event loop is due, so other connections get theirs.
      if (!this.#blocked) setImmediate(releaseReady, this)
    }
    return this.#whenReady
  }

  deliver (entry: string): void {
    if (this.#ended) return
    // A feed that cannot wait may run ahead of the socket only so far, in messages and in bytes.
    // A burst that fills the socket within one tick is let through up to a ceiling: the subscriber
    // is behind only once its socket stayed full for a whole turn of the event loop, that is once
    // 'drain' had its chance.
    if (this.#overQueue(this.#pendingMessages, this.#feed.maxQueue)) return this.end('overflow')
    this.#append(entry)
    this.#messages++
    this.#pendingMessages++
    if (this.#pollWaiting) this.#gather()
    this.#scheduleFlush()
  }

  /**
   * A message of one key of a multiplexed stream. The lane's queue counts against its own maxQueue,
   * as a single source's counts against the stream's; a `3,KEY,` entry goes before it wherever the
   * key changes within a batch.
   */
  deliverTo (lane: Lane, entry: string): void {
    if (this.#ended) return
    if (lane.writes !== this.#writes) {
      lane.writes = this.#writes
      lane.pending = 0
    }
    if (this.#overQueue(lane.pending, lane.maxQueue)) return this.overflowed(lane)
    if (this.#pending === '' || this.#batchLane !== lane) {
      this.#append(lane.keyEntry)
      this.#batchLane = lane
    }
    this.#append(entry)
    this.#messages++
    this.#pendingMessages++
    lane.pending++
    if (this.#pollWaiting) this.#gather()
    this.#scheduleFlush()
  }

  /** Whether one more message would take a feed (or a lane) past what it may queue while the socket is full. */
  #overQueue (pending: number, maxQueue: number): boolean {
    if (!this.#blocked) return false
    const ceiling = this.#behind ? 1 : BURST_CEILING
    return pending >= maxQueue * ceiling || this.#pendingBytes >= this.#maxQueueBytes * ceiling
  }

  /** One key's feed held more than its maxQueue: the whole document ends, the client resumes every key. */
  overflowed (lane: Lane): void {
    this.#overflowLane ??= lane
    this.end('overflow')
  }

  /**
   * Writes a control message in order with the messages: the shipped client hands it to its
   * handlers (see client/comet-client.js), a page's own callback never sees it.
   */
  control (type: string, detail: Record<string, unknown>): void {
    if (this.#ended) return
    this.#append(controlEntry(type, detail))
    if (this.#pollWaiting) this.#gather()
    this.#scheduleFlush()
  }

  // A poll with something to deliver takes what follows within a few milliseconds (a replay, a
  // burst), then ends: one response carries them all, and the client polls again at once.
  #gather (): void {
    this.#pollWaiting = false
    clearTimeout(this.#durationTimer)
    this.#durationTimer = setTimeout(endPoll, POLL_GATHER_MS, this)
  }

  #append (entry: string): void {
    const counted = this.#maxBytes !== Infinity || this.#blocked
    if (this.#json) entry = jsonEntry(entry)
    if (this.#pending === '') {
      // A JSON poll's writes make one array: `[` first, then `,` between them; a write leaves
      // out its last entry's comma, and the end adds `]`.
      const prefix = this.#json ? (this.#writes === 0 ? '[' : ',') : batchPrefix(this.#nonce)
      this.#pending = prefix + entry
      this.#pendingBytes = counted ? prefix.length + (this.#json ? -1 : BATCH_SUFFIX_BYTES) + Buffer.byteLength(entry) : 0
    } else {
      this.#pending += entry
      if (counted) this.#pendingBytes += Buffer.byteLength(entry)
    }
  }

  #scheduleFlush (): void {
    // Rotation: end after the entry that crosses the limit.
    if (this.#bytes + this.#pendingBytes >= this.#maxBytes) return this.end('max-bytes')
    if (this.#pending.length >= BATCH_CHARS) {
      if (this.#blocked) return
      this.#flush()
      this.#yieldDue = true
    } else if (!this.#flushOnTick && !this.#json) {
      // A lone message must not wait for a full batch: it leaves once this tick's work is done
      // (a JSON poll is read whole: it leaves with the poll's end, a millisecond later).
      this.#flushOnTick = true
      process.nextTick(flushAfterTick, this)
    }
  }

  /** Writes what is pending unless the socket is full. */
  flushPending (): void {
    this.#flushOnTick = false
    if (!this.#blocked) this.#flush()
  }

  #flush (): void {
    if (this.#pending === '' || this.#ended) return
    const chunk = this.#json ? this.#pending.slice(0, -1) : this.#pending + BATCH_SUFFIX
    const bytes = this.#maxBytes !== Infinity ? this.#pendingBytes : Buffer.byteLength(chunk)
    this.#pending = ''
    this.#pendingBytes = 0
    this.#pendingMessages = 0
    this.#writes++
    this.#write(chunk, bytes)
  }

  #write (chunk: string, bytes: number): void {
    this.#bytes += bytes
    this.#silentTicks = 0
    // Listen for 'drain' at once: waiting for it later could miss it.
    if (!this.#raw.write(chunk) && !this.#blocked) {
      this.#blocked = true
      this.#raw.once('drain', onDrain)
      setImmediate(checkBehind, this, 1)
    }
  }

  /** Runs a turn after the socket filled up, then once more: still full, the queue counts from now on. */
  checkBehind (turn: number): void {
    if (!this.#blocked || this.#ended) return
    if (turn === 1) { // once more, so that a whole loop with its I/O has run
      setImmediate(checkBehind, this, 2)
      return
    }
    this.#behind = true
    if (this.#pendingMessages > this.#feed.maxQueue || this.#pendingBytes > this.#maxQueueBytes) return this.end('overflow')
    const over = this.#feed.lanes?.find(lane => lane.writes === this.#writes && lane.pending > lane.maxQueue)
    if (over !== undefined) this.overflowed(over)
  }

  drained (): void {
    this.#blocked = false
    this.#behind = false
    this.#flush() // what arrived while the socket was full
    if (!this.#blocked) this.releaseReady()
  }

  releaseReady (): void {
    const resolve = this.#resolveReady
    this.#whenReady = undefined
    this.#resolveReady = undefined
    this.#yieldDue = false
    resolve?.()
  }

  /**
   * Keeps proxies from closing an idle stream, and tells the shipped client the connection is
   * alive; never writes while the socket is full.
   */
  idleTick (ticksPerBeat: number): void {
    if (++this.#silentTicks >= ticksPerBeat && !this.#blocked) {
      const beat = heartbeatScript(this.#nonce)
      this.#write(beat, beat.length) // ASCII
    }
  }

  /** Ends the stream because its source failed; logged once, as an error of this request. */
  fail (err: unknown): void {
    if (this.#ended) return
    logFailure(this.#log, err, 'comet stream ended: the source failed')
    this.end('error')
  }

  /** Ends the stream once: stops the feed, clears timers and listeners, ends the response. Never throws. */
  end (reason: EndReason): void {
    if (this.#ended) return
    const raw = this.#raw
    const queued = this.#queuedSettings
    if (queued !== undefined) {
      this.#queuedSettings = undefined
      raw.removeListener('socket', onSocket)
      // Shut down while queued: the document begins, so that it can tell the client to reconnect
      // (#begin() ends it at once during shutdown).
      if (reason === 'shutdown') return this.#begin(queued)
    }
    const reconnect = this.#json ? jsonReconnect(reason) : RECONNECT[reason]
    if (reconnect !== undefined) this.#append(controlEntry('reconnect', reconnect))
    if (reason !== 'client-gone') this.#flush()
    const last = this.#json && hasBody(reason) ? (this.#writes === 0 ? '[]' : ']') : undefined
    this.#ended = true
    this.#pending = ''
    this.#heartbeat?.delete(this)
    clearTimeout(this.#durationTimer)
    raw.removeListener('close', onResponseClose)
    raw.removeListener('drain', onDrain)
    this.#request.removeListener('close', onRequestClose)
    this.releaseReady()
    this.#feed.stop() // never throws: return() and abort listeners report their own errors
    if (reason === 'overflow') {
      const lane = this.#overflowLane
      const queue = lane === undefined ? { maxQueue: this.#feed.maxQueue } : { maxQueue: lane.maxQueue, key: lane.key }
      this.#log.warn({ ...queue, maxQueueBytes: this.#maxQueueBytes }, 'comet subscriber fell too far behind: ending its stream so the client reconnects')
    }
    if (reason !== 'client-gone') {
      this.#bytes += last?.length ?? 0
      endResponse(raw, this.#log, last)
    }
    // With the response ended: counted in stats() and published to diagnostics subscribers.
    this.#streams.delete(this, reason, this.#startedAt)
    this.#log.debug({
      reason,
      messages: this.#messages,
      bytes: this.#bytes,
      durationMs: Math.round(performance.now() - this.#startedAt)
    }, 'comet stream ended')
    this.#resolveDone()
  }
}

// end() must not throw (it runs in shutdown hooks and timers), and a client that stopped reading
// must not hold the connection for ever: past the grace period it is destroyed.
function endResponse (raw: ServerResponse, log: FastifyBaseLogger, last?: string): void {
  try {
    raw.end(last)
  } catch (err) {
    logFailure(log, err, 'comet response could not be ended: connection dropped')
    abortResponse(raw)
    return
  }
  if (!raw.writableFinished) setTimeout(dropUnfinished, END_GRACE_MS, raw, log).unref()
}

function dropUnfinished (raw: ServerResponse, log: FastifyBaseLogger): void {
  if (!raw.writableFinished) { // the client may have read it all meanwhile
    log.debug({ graceMs: END_GRACE_MS }, 'comet response dropped: the client did not read its end in time')
    abortResponse(raw)
  }
}

// Shared listeners and timer callbacks: they find their stream on the object or in the argument.
function onResponseClose (this: Carrier): void {
  // 'close' after our own end() is the normal finish (the listener is gone by then).
  this[kStream]?.end('client-gone')
}

function onRequestClose (this: IncomingMessage & Carrier): void {
  // A request also closes once its body is read; only a dead connection means the client left.
  if (this.socket == null || this.socket.destroyed) this[kStream]?.end('client-gone')
}

function onSocket (this: Carrier): void {
  this[kStream]?.socketAssigned()
}

function onDrain (this: Carrier): void {
  this[kStream]?.drained()
}

function flushAfterTick (stream: CometStream): void {
  stream.flushPending()
}

function releaseReady (stream: CometStream): void {
  stream.releaseReady()
}

function checkBehind (stream: CometStream, turn: number): void {
  stream.checkBehind(turn)
}

function expire (stream: CometStream): void {
  stream.end('max-duration')
}

function endPoll (stream: CometStream): void {
  stream.end('poll')
}
