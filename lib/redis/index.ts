// fastify-comet/redis: a broker that shares named channels between instances through Redis. Its
// own entry point, so that only applications that use it load ioredis (an optional peer).
import { Cluster, Redis, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import { BrokeredChannel } from './channel.js'
import { FST_COMET_INVALID_OPTION } from '../errors.js'
import { MAX_DELAY } from '../options.js'
import { RedisLink } from './link.js'
import type { Connection } from './lane.js'
import type { BrokerConnection, CometBroker } from '../broker.js'
import type { CometRedisOptions } from '../../types/redis.js'

const DEFAULT_COMMAND_TIMEOUT = 2000
const DEFAULT_MAX_IN_FLIGHT = 1000
const KNOWN = new Set(['url', 'client', 'cluster', 'prefix', 'commandTimeout', 'maxInFlight'])

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

// A Redis Cluster: the same, for each node's connection; a command whose connection closed fails
// (retryDelayOnFailover 0: it may have run, and is never sent again), as does one that finds the
// cluster down; MOVED and ASK are followed (the command did not run where it was refused).
function clusterOptions (options: RedisOptions): ClusterOptions {
  const { lazyConnect, enableOfflineQueue, ...redisOptions } = options
  return { lazyConnect, enableOfflineQueue, retryDelayOnFailover: 0, retryDelayOnClusterDown: 0, redisOptions }
}

// The subscriber of a cluster is one connection per primary, made and followed by ioredis
// (shardedSubscribers): it subscribes again after a failover or a slot's move, then says so
// (subscribersReady) and every channel reads its log. It queues a subscription asked for while
// the cluster is away (one command per channel followed meanwhile), then sends it once back. One
// whose node's connection closed fails at once (retryDelayOnFailover 0), rather than being tried
// again for seconds while its shard is down: ioredis has it on record and subscribes again once
// the shard is back; tried again, every room that came and went meanwhile would be subscribed to
// and unsubscribed from on the new primary.
const CLUSTER_SUBSCRIBER_OPTIONS: ClusterOptions = { lazyConnect: false, enableOfflineQueue: true, shardedSubscribers: true, retryDelayOnFailover: 0 }

/** A broker for `fastify.register(fastifyComet, { broker: cometRedis({ url }) })`. */
export function cometRedis (options: CometRedisOptions): CometBroker {
  const { url, client, cluster, prefix, commandTimeout, maxInFlight } = readOptions(options)
  return {
    async connect (log: FastifyBaseLogger): Promise<BrokerConnection> {
      // Connections of our own, even from the application's client: a subscriber cannot run
      // commands, and ours are set to fail fast. The application's client is left as it is.
      const clustered = cluster !== undefined || client?.isCluster === true
      const connect = (options: RedisOptions, subscriber = false): Connection => {
        if (!clustered) return (client as Redis | undefined)?.duplicate(options) ?? new Redis(url as string, options)
        if (subscriber) return (client as Cluster | undefined)?.duplicate([], CLUSTER_SUBSCRIBER_OPTIONS) ?? new Cluster(cluster as ClusterNode[], CLUSTER_SUBSCRIBER_OPTIONS)
        const commands = (client as Cluster | undefined)?.duplicate([], clusterOptions(options)) ?? new Cluster(cluster as ClusterNode[], clusterOptions(options))
        // ioredis connects to a node on its first command, and refuses the next ones until it is
        // connected (no offline queue): each node is connected to as soon as the cluster names it.
        commands.on('+node', connectNode)
        return commands
      }
      const link = new RedisLink(connect(COMMAND_OPTIONS), connect(COMMAND_OPTIONS), connect(SUBSCRIBER_OPTIONS, true), { prefix, commandTimeout, maxInFlight }, log)
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

function connectNode (node: Redis): void {
  // Already connecting (a command came first): nothing to do. Failing: told on the cluster's events.
  node.connect().catch(ignoreFailure)
}

function ignoreFailure (): void {}

function readOptions (options: CometRedisOptions): Required<Omit<CometRedisOptions, 'url' | 'client' | 'cluster'>> & CometRedisOptions {
  if (options === null || typeof options !== 'object') throw new FST_COMET_INVALID_OPTION('options', 'expected an object')
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new FST_COMET_INVALID_OPTION(key, `unknown option, expected one of ${[...KNOWN].join(', ')}`)
  }
  const { url, client, cluster, prefix = 'comet:', commandTimeout = DEFAULT_COMMAND_TIMEOUT, maxInFlight = DEFAULT_MAX_IN_FLIGHT } = options
  if ([url, client, cluster].filter(given => given !== undefined).length !== 1) {
    throw new FST_COMET_INVALID_OPTION('url', 'give one of url (redis://host:port), client (an ioredis Redis or Cluster) or cluster (its nodes)')
  }
  if (url !== undefined && (typeof url !== 'string' || url === '')) throw new FST_COMET_INVALID_OPTION('url', 'expected a string such as redis://127.0.0.1:6379')
  if (client !== undefined && typeof (client as Partial<Redis>)?.duplicate !== 'function') {
    throw new FST_COMET_INVALID_OPTION('client', 'expected an ioredis instance (with duplicate())')
  }
  if (cluster !== undefined && (!Array.isArray(cluster) || cluster.length === 0 || !cluster.every(isNode))) {
    throw new FST_COMET_INVALID_OPTION('cluster', 'expected a list of nodes of the cluster, each \'host:port\', a port, or { host, port }')
  }
  if (typeof prefix !== 'string') throw new FST_COMET_INVALID_OPTION('prefix', 'expected a string')
  if (!Number.isSafeInteger(commandTimeout) || commandTimeout < 1 || commandTimeout > MAX_DELAY) {
    throw new FST_COMET_INVALID_OPTION('commandTimeout', `expected a whole number of milliseconds from 1 to ${MAX_DELAY}`)
  }
  if (!Number.isSafeInteger(maxInFlight) || maxInFlight < 1) throw new FST_COMET_INVALID_OPTION('maxInFlight', 'expected a whole number, 1 or more')
  return { url, client, cluster, prefix, commandTimeout, maxInFlight }
}

function isNode (node: unknown): boolean {
  if (typeof node === 'string') return node !== ''
  if (typeof node === 'number') return Number.isSafeInteger(node) && node > 0
  return node !== null && typeof node === 'object' && !Array.isArray(node)
}
