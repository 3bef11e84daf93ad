// The channels made by fastify.comet.channel(), for stats(). Held weakly: a channel the application
// drops without close() must not be kept alive by being counted. Counting happens at stats() time
// (a scrape), so publishing and subscribing pay nothing for it.
import { CometChannel, kChannelClosed } from './channel.js'
import type { CometStats } from '../types/index.js'

export class LiveChannels {
  readonly #channels = new Set<WeakRef<CometChannel<unknown>>>()
  /** A named channel comes back from every fastify.comet.channel() call that names it: counted once. */
  readonly #known = new WeakSet<CometChannel<unknown>>()
  /** The set is swept of dead references once it has doubled since the last sweep: amortized O(1). */
  #sweepAt = 64

  add<T> (channel: CometChannel<T>): CometChannel<T> {
    const known = channel as CometChannel<unknown>
    if (this.#known.has(known)) return channel
    this.#known.add(known)
    this.#channels.add(new WeakRef(known))
    // An application that makes a channel per request and never asks for stats() would otherwise
    // grow the set with references to collected channels.
    if (this.#channels.size >= this.#sweepAt) {
      this.stats()
      this.#sweepAt = Math.max(64, this.#channels.size * 2)
    }
    return channel
  }

  /** Open channels and their subscribers; forgets channels that were closed or collected. */
  stats (): CometStats['channels'] {
    let open = 0
    let subscribers = 0
    for (const ref of this.#channels) {
      const channel = ref.deref()
      if (channel === undefined || channel[kChannelClosed]) {
        this.#channels.delete(ref) // closing is for good: it never counts again
        continue
      }
      open++
      subscribers += channel.size
    }
    return { open, subscribers }
  }
}
