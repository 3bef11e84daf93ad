// fastify.comet.channel(): a name gives back the same channel within one plugin instance, so
// every route that names it shares its subscribers and history, until it is closed. With a broker,
// a named channel is shared by every instance that uses the same broker.
import { CometChannel, kOnClose } from './channel.js'
import { FST_COMET_INVALID_OPTION } from './errors.js'
import { resolveChannelOptions } from './options.js'
import type { BrokerConnection, RegisteredChannel } from './broker.js'
import type { CometChannelOptions } from '../types/index.js'

const SETTINGS = ['history', 'maxQueue', 'id'] as const

export class NamedChannels {
  readonly #channels = new Map<string, { channel: RegisteredChannel, options: CometChannelOptions<never> }>()
  readonly #broker: BrokerConnection | undefined

  constructor (broker: BrokerConnection | undefined) {
    this.#broker = broker
  }

  /** A new channel, or the existing one of that name; other options for an existing name throw FST_COMET_INVALID_OPTION. */
  channel<T> (options: CometChannelOptions<T> = {}): RegisteredChannel {
    const settings = resolveChannelOptions(options) // validates, whether or not a channel is made
    const name = options.name
    if (name === undefined) return new CometChannel<T>(options)
    const existing = this.#channels.get(name)
    if (existing !== undefined) {
      const differs = SETTINGS.find(key => existing.options[key] !== (options as CometChannelOptions<never>)[key])
      if (differs !== undefined) {
        throw new FST_COMET_INVALID_OPTION(differs, `channel "${name}" already exists with another ${differs}`)
      }
      return existing.channel
    }
    let channel: RegisteredChannel
    if (this.#broker === undefined) {
      channel = new CometChannel<T>(options)
    } else {
      // Shared through the broker, a channel is its log there: ids, order and resume all come from it.
      if (settings.history === 0) throw new FST_COMET_INVALID_OPTION('history', `channel "${name}" is shared through the broker, which keeps its messages: give it a history of 1 or more`)
      channel = this.#broker.channel(name, settings)
    }
    this.#channels.set(name, { channel, options: options as CometChannelOptions<never> })
    // Held until closed (a name must give back the same channel, history included); a closed
    // one is let go, so the name starts afresh and per-room names do not pile up.
    channel[kOnClose](() => { this.#channels.delete(name) })
    return channel
  }
}
