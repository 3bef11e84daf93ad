// fastify.comet.channel(): a name gives back the same channel within one plugin instance, so
// every route (and, with a broker, every instance) that names it shares its subscribers and history,
// until it is closed.
import { CometChannel, kOnClose } from './channel.js'
import { FST_COMET_INVALID_OPTION } from './errors.js'
import type { CometChannelOptions } from '../types/index.js'

const SETTINGS = ['history', 'maxQueue', 'id'] as const

export class NamedChannels {
  readonly #channels = new Map<string, { channel: CometChannel<never>, options: CometChannelOptions<never> }>()

  /** A new channel, or the existing one of that name; other options for an existing name throw FST_COMET_INVALID_OPTION. */
  channel<T> (options?: CometChannelOptions<T>): CometChannel<T> {
    const name = options?.name
    const channel = new CometChannel<T>(options) // validates, whether or not it is kept
    if (name === undefined) return channel
    const existing = this.#channels.get(name)
    if (existing === undefined) {
      this.#channels.set(name, { channel: channel as CometChannel<never>, options: options as CometChannelOptions<never> })
      // Held until closed (a name must give back the same channel, history included); a closed
      // one is let go, so the name starts afresh and per-room names do not pile up.
      channel[kOnClose](() => { this.#channels.delete(name) })
      return channel
    }
    const differs = SETTINGS.find(key => existing.options[key] !== (options as CometChannelOptions<never>)[key])
    if (differs !== undefined) {
      throw new FST_COMET_INVALID_OPTION(differs, `channel "${name}" already exists with another ${differs}`)
    }
    return existing.channel as CometChannel<T>
  }
}
