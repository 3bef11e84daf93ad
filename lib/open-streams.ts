// The open streams of one plugin instance, so that shutdown can end them all and maxStreams can
// refuse more, and the stream counters behind fastify.comet.stats(). Everything here happens when
// a stream opens or ends: nothing per message.
import type { FastifyReply } from 'fastify'
import type { CometEndReason, CometStats } from '../types/index.js'
import { streamEndChannel, streamOpenChannel } from './diagnostics.js'
import type { CometStream, EndReason } from './stream.js'

export class OpenStreams {
  /** Each open stream with its reply, which the diagnostics messages carry. */
  readonly #streams = new Map<CometStream, FastifyReply>()
  readonly #maxStreams: number
  /** Set once the server is shutting down: a stream that starts now ends at once. */
  closing = false
  #opened = 0
  #ended = 0
  #refused = 0
  // Totals of the streams that have ended; those of open streams are added up at stats() time, so
  // the write path never touches a shared counter.
  #endedMessages = 0
  #endedBytes = 0
  // Typed with the public reason list: a reason stream.ts adds without declaring it in types/
  // fails to compile in delete() below.
  readonly #endReasons: Record<CometEndReason, number> = {
    done: 0,
    'client-gone': 0,
    error: 0,
    shutdown: 0,
    'max-bytes': 0,
    'max-duration': 0,
    overflow: 0,
    head: 0,
    poll: 0
  }

  constructor (maxStreams: number) {
    this.#maxStreams = maxStreams
  }

  /** False, counting a refusal, when another stream would exceed maxStreams. */
  admit (): boolean {
    if (this.#streams.size < this.#maxStreams) return true
    this.#refused++
    return false
  }

  add (stream: CometStream, reply: FastifyReply): void {
    this.#streams.set(stream, reply)
    this.#opened++
    if (streamOpenChannel.hasSubscribers) streamOpenChannel.publish({ request: reply.request, reply })
  }

  /** Called once by the stream's end(), when its counts are final; `startedAt` is its performance.now(). */
  delete (stream: CometStream, reason: EndReason, startedAt: number): void {
    const reply = this.#streams.get(stream) as FastifyReply // end() runs only after start() added it
    this.#streams.delete(stream)
    this.#ended++
    this.#endReasons[reason]++
    const { messages, bytes } = stream
    this.#endedMessages += messages
    this.#endedBytes += bytes
    if (streamEndChannel.hasSubscribers) {
      const durationMs = Math.round(performance.now() - startedAt)
      streamEndChannel.publish({ request: reply.request, reply, reason, messages, bytes, durationMs })
    }
  }

  /** Ends every open stream cleanly: sources are stopped, so their finally blocks run. */
  shutdown (): void {
    this.closing = true
    for (const stream of this.#streams.keys()) stream.end('shutdown')
  }

  /** A snapshot: plain numbers, copied, so that it does not change under the caller. */
  stats (): Omit<CometStats, 'channels'> {
    let messages = this.#endedMessages
    let bytes = this.#endedBytes
    for (const stream of this.#streams.keys()) {
      messages += stream.messages
      bytes += stream.bytes
    }
    return {
      streams: {
        open: this.#streams.size,
        opened: this.#opened,
        ended: this.#ended,
        endReasons: { ...this.#endReasons },
        refused: this.#refused
      },
      messages,
      bytes
    }
  }
}
