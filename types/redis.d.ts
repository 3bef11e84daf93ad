// The public types of fastify-comet/redis.
import type { Cluster, ClusterNode, Redis } from 'ioredis'
import type { CometBroker } from './index.js'

export interface CometRedisOptions {
  /** Where Redis is, e.g. `redis://127.0.0.1:6379` (any URL ioredis takes). Give one of `url`, `client` or `cluster`. */
  url?: string
  /**
   * An ioredis instance, e.g. `fastify.redis` from @fastify/redis, or an ioredis `Cluster` (Redis 7
   * or later: messages go out on sharded pub/sub); the broker duplicates its connections from it.
   */
  client?: Redis | Cluster
  /** Nodes of a Redis Cluster (Redis 7 or later), as `new Cluster(nodes)` takes them: `'host:port'`, a port, or `{ host, port }`. */
  cluster?: ClusterNode[]
  /** Prefix of every key and pub/sub channel the broker uses. Default `comet:`. */
  prefix?: string
  /**
   * Milliseconds a publish (or a read of a channel's log) may wait for Redis's answer before it
   * fails; an answer that arrived in time but was read late (a busy event loop) still counts. Default 2000.
   */
  commandTimeout?: number
  /**
   * Publishes that may wait for Redis's answer at once; one more rejects at once with
   * `FST_COMET_PUBLISH_FAILED`, unsent. Bounds what piles up while Redis is slow or hung, and how
   * many publishes reported failed can still be stored once it answers again. On a Redis Cluster,
   * for each primary. Default 1000.
   */
  maxInFlight?: number
}

/** A broker that shares named channels between instances through Redis or a Redis Cluster (Streams for the log, pub/sub for delivery). */
export declare function cometRedis (options: CometRedisOptions): CometBroker
