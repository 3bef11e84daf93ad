// The channels made by fastify.comet.channel(), for stats(). Held weakly: a channel the application
// drops without close() must not be kept alive by being counted, and is forgotten once collected
// (per-room names come and go by the hundred thousand). Counting happens at stats() time (a
// scrape), so publishing and subscribing pay nothing for it.
import { kChannelClosed } from './channel.js'
import type { RegisteredChannel } from './broker.js'
import type { CometStats } from '../types/index.js'

export class LiveChannels {
  readonly #channels = new Set<WeakRef<RegisteredChannel>>()
  readonly #collected = new FinalizationRegistry<WeakRef<RegisteredChannel>>(ref => { this.#channels.delete(ref) })

  /** Counts a new channel (named-channels.ts calls it once per channel it makes). */
  add (channel: RegisteredChannel): void {
    const ref = new WeakRef(channel)
    this.#channels.add(ref)
    this.#collected.register(channel, ref)
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
