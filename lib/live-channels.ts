// The channels made by fastify.comet.channel(), for stats(). Held weakly: a channel the application
// drops without close() must not be kept alive by being counted. Counting happens at stats() time
// (a scrape), so publishing and subscribing pay nothing for it.
import { kChannelClosed } from './channel.js'
import type { RegisteredChannel } from './broker.js'
import type { CometStats } from '../types/index.js'

export class LiveChannels {
  readonly #channels = new Set<WeakRef<RegisteredChannel>>()
  /** A named channel comes back from every fastify.comet.channel() call that names it: counted once. */
  readonly #known = new WeakSet<RegisteredChannel>()
  /** The set is swept of dead references once it has doubled since the last sweep: amortized O(1). */
  #sweepAt = 64

  add (channel: RegisteredChannel): RegisteredChannel {
    if (this.#known.has(channel)) return channel
    this.#known.add(channel)
    this.#channels.add(new WeakRef(channel))
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
