// fastify-comet/redis: a broker that shares named channels between instances through Redis. Its
// own entry point, so that only applications that use it load ioredis (an optional peer).
import { Redis, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { BrokeredChannel } from './channel.js'
import { FST_COMET_INVALID_OPTION } from '../errors.js'
import { MAX_DELAY } from '../options.js'
import { RedisLink } from './link.js'
import type { BrokerConnection, CometBroker } from '../broker.js'
import type { CometRedisOptions } from '../../types/redis.js'

const DEFAULT_COMMAND_TIMEOUT = 2000
const DEFAULT_MAX_IN_FLIGHT = 1000
const KNOWN = new Set(['url', 'client', 'prefix', 'commandTimeout', 'maxInFlight'])

// Publishing and reading fail at once while Redis is away, instead of queueing without limit,
// and within commandTimeout when it does not answer (RedisLane's timer, not ioredis's: see
// answered()); nothing is sent twice after a reconnection (a publish that timed out may have been
// stored, and the application may publish it again), and a closed connection fails at once
// whatever was in flight on it (maxRetriesPerRequest 0), rather than holding it for ever.
const COMMAND_OPTIONS: RedisOptions = {
  lazyConnect: false,
  enableOfflineQueue: false,
  autoResendUnfulfilledCommands: false,
  maxRetriesPerRequest: 0,
  // Not ioredis's own, even when the application's client (duplicated) has one.
  commandTimeout: undefined
}

// The subscriber waits for Redis as long as it takes; it subscribes again itself after a
// reconnection, so that every channel reads its log only once the subscription is back, and
// queues nothing while it is down (the channels followed then are subscribed to at once).
const SUBSCRIBER_OPTIONS: RedisOptions = { lazyConnect: false, autoResubscribe: false, enableOfflineQueue: false, maxRetriesPerRequest: 0 }

/** A broker for `fastify.register(fastifyComet, { broker: cometRedis({ url }) })`. */
export function cometRedis (options: CometRedisOptions): CometBroker {
  const { url, client, prefix, commandTimeout, maxInFlight } = readOptions(options)
  return {
    async connect (log: FastifyBaseLogger): Promise<BrokerConnection> {
      // Connections of our own, even from the application's client: a subscriber cannot run
      // commands, and ours are set to fail fast. The application's client is left as it is.
      const connect = (options: RedisOptions): Redis => client?.duplicate(options) ?? new Redis(url as string, options)
      const link = new RedisLink(connect(COMMAND_OPTIONS), connect(COMMAND_OPTIONS), connect(SUBSCRIBER_OPTIONS), { prefix, commandTimeout, maxInFlight }, log)
      // The application starts even while Redis is away (its streams work, publishing fails until
      // Redis is back), but does not start by failing the first publishes of a normal boot.
      await link.connected(commandTimeout)
      return {
        channel: (name, settings) => new BrokeredChannel(name, settings, link),
        close: () => link.close()
      }
    }
  }
}

function readOptions (options: CometRedisOptions): Required<Omit<CometRedisOptions, 'url' | 'client'>> & CometRedisOptions {
  if (options === null || typeof options !== 'object') throw new FST_COMET_INVALID_OPTION('options', 'expected an object')
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new FST_COMET_INVALID_OPTION(key, `unknown option, expected one of ${[...KNOWN].join(', ')}`)
  }
  const { url, client, prefix = 'comet:', commandTimeout = DEFAULT_COMMAND_TIMEOUT, maxInFlight = DEFAULT_MAX_IN_FLIGHT } = options
  if ((url === undefined) === (client === undefined)) {
    throw new FST_COMET_INVALID_OPTION('url', 'give either url (redis://host:port) or client (an ioredis instance), not both')
  }
  if (url !== undefined && (typeof url !== 'string' || url === '')) throw new FST_COMET_INVALID_OPTION('url', 'expected a string such as redis://127.0.0.1:6379')
  if (client !== undefined && typeof (client as Partial<Redis>)?.duplicate !== 'function') {
    throw new FST_COMET_INVALID_OPTION('client', 'expected an ioredis instance (with duplicate())')
  }
  if (typeof prefix !== 'string') throw new FST_COMET_INVALID_OPTION('prefix', 'expected a string')
  if (!Number.isSafeInteger(commandTimeout) || commandTimeout < 1 || commandTimeout > MAX_DELAY) {
    throw new FST_COMET_INVALID_OPTION('commandTimeout', `expected a whole number of milliseconds from 1 to ${MAX_DELAY}`)
  }
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) throw new FST_COMET_INVALID_OPTION('maxInFlight', 'expected a whole number, 1 or more')
  return { url, client, prefix, commandTimeout, maxInFlight }
}
