// The contract between the plugin and a broker, such as `cometRedis()` from fastify-comet/redis:
// at register, the plugin connects the broker once, and then asks it for every named channel, so
// that the core holds no code (and needs no package) for any particular broker.
import type { FastifyBaseLogger } from 'fastify'
import type { CometFeedSource } from './feed.js'
import type { kChannelClosed, kOnClose, kOnHeld } from './channel.js'

/** A channel the plugin hands out and counts: an in-process one, or one shared through a broker. */
export interface RegisteredChannel extends CometFeedSource {
  readonly size: number
  readonly [kChannelClosed]: boolean
  [kOnClose] (listener: () => void): void
  /** Told whether the registry of names must hold it; a channel without it is held only by its users. */
  [kOnHeld]? (listener: (held: boolean) => void): void
  publish (message: never): Promise<string> | undefined
  position (): Promise<string | undefined>
  close (): void
}

export interface BrokerChannelSettings {
  history: number
  /** Milliseconds a message is kept; 0 for no age limit. */
  historyTtl: number
  maxQueue: number
}

/** The broker, connected for one plugin instance. */
export interface BrokerConnection {
  channel (name: string, settings: BrokerChannelSettings): RegisteredChannel
  /** Lets go of every connection it opened (called when Fastify closes). */
  close (): void
}

export interface CometBroker {
  /** Resolves once the broker can publish, or has waited long enough to say it cannot yet. */
  connect (log: FastifyBaseLogger): Promise<BrokerConnection>
}
