// fastify.comet.channel(): a name gives back the same channel within one plugin instance, so
// every route that names it shares its subscribers and history. With a broker, a named channel is
// shared by every instance that uses the same broker. Channels appear on use and go when unused:
// the registry holds a channel only while it must (see below), so per-room or per-user names do
// not pile up.
import { CometChannel, kOnClose, kOnHeld } from './channel.js'
import { FST_COMET_INVALID_OPTION } from './errors.js'
import { resolveChannelOptions } from './options.js'
import type { BrokerConnection, RegisteredChannel } from './broker.js'
import type { LiveChannels } from './live-channels.js'
import type { CometChannelOptions } from '../types/index.js'

const SETTINGS = ['history', 'historyTtl', 'maxQueue', 'id'] as const

interface Named {
  /** Always: the name gives back the channel as long as anything keeps it alive. */
  readonly ref: WeakRef<RegisteredChannel>
  /**
   * Set while the channel must be kept for itself: an in-process channel with subscribers or
   * messages a client may still resume from. A brokered channel needs none: its state is in the
   * broker, and its subscribers' streams reach it while it has any.
   */
  held: RegisteredChannel | undefined
  readonly options: CometChannelOptions<never>
}

export class NamedChannels {
  readonly #channels = new Map<string, Named>()
  readonly #broker: BrokerConnection | undefined
  readonly #live: LiveChannels
  // A channel nothing keeps any more has been collected: its name goes (unless already reused).
  readonly #collected = new FinalizationRegistry<string>(name => {
    if (this.#channels.get(name)?.ref.deref() === undefined) this.#channels.delete(name)
  })

  constructor (broker: BrokerConnection | undefined, live: LiveChannels) {
    this.#broker = broker
    this.#live = live
  }

  /**
   * A new channel, counted for stats(), or the existing one of that name; other options for an
   * existing name throw FST_COMET_INVALID_OPTION.
   */
  channel<T> (options: CometChannelOptions<T> = {}): RegisteredChannel {
    const settings = resolveChannelOptions(options) // validates, whether or not a channel is made
    const name = options.name
    if (name === undefined) {
      const channel = new CometChannel<T>(options)
      this.#live.add(channel)
      return channel
    }
    const existing = this.#channels.get(name)
    const found = existing?.ref.deref()
    if (found !== undefined) {
      const differs = SETTINGS.find(key => (existing as Named).options[key] !== (options as CometChannelOptions<never>)[key])
      if (differs !== undefined) {
        throw new FST_COMET_INVALID_OPTION(differs, `channel "${name}" already exists with another ${differs}`)
      }
      return found
    }
    let channel: RegisteredChannel
    if (this.#broker === undefined) {
      channel = new CometChannel<T>(options)
    } else {
      // Shared through the broker, a channel is its log there: ids, order and resume all come from it.
      if (settings.history === 0) throw new FST_COMET_INVALID_OPTION('history', `channel "${name}" is shared through the broker, which keeps its messages: give it a history of 1 or more`)
      channel = this.#broker.channel(name, settings)
    }
    const named: Named = { ref: new WeakRef(channel), held: undefined, options: options as CometChannelOptions<never> }
    this.#channels.set(name, named)
    this.#collected.register(channel, name)
    this.#live.add(channel)
    channel[kOnHeld]?.(held => { named.held = held ? channel : undefined })
    // A closed channel is let go at once, so the name starts afresh. (Alive, it is the name's channel.)
    channel[kOnClose](() => { this.#channels.delete(name) })
    return channel
  }
}
