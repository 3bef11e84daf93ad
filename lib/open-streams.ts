// The open streams of one plugin instance, so that shutdown can end them all.
import type { CometStream } from './stream.js'

export class OpenStreams {
  readonly #streams = new Set<CometStream>()
  /** Set once the server is shutting down: a stream that starts now ends at once. */
  closing = false

  add (stream: CometStream): void {
    this.#streams.add(stream)
  }

  delete (stream: CometStream): void {
    this.#streams.delete(stream)
  }

  /** Ends every open stream cleanly: sources are stopped, so their finally blocks run. */
  shutdown (): void {
    this.closing = true
    for (const stream of this.#streams) stream.end('shutdown')
  }
}
