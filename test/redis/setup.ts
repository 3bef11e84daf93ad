// Instances of an application that shares named channels through one redis-server: each has its
// own plugin, broker and connections, as separate processes would.
import type { Test } from 'tap'
import type { RedisOptions } from 'ioredis'
import { Redis } from 'ioredis'
import { build, listen, type LogLine } from '../helpers.js'
import { cometRedis } from '../../lib/redis.js'
import type { CometHistoryChannel } from '../../types/index.js'
import type { RedisServer } from './redis-server.js'

export interface Instance {
  url: string
  chat: CometHistoryChannel<unknown>
  logs: LogLine[]
}

/**
 * An instance serving `GET /comet` from the channel `name` (callback `cb`, no padding, no rotation).
 * `redisOptions` makes the broker's connections from a client with those options (they are duplicated).
 */
export async function instance (t: Test, redis: RedisServer, options: { name?: string, history?: number, maxQueue?: number, redisOptions?: RedisOptions } = {}): Promise<Instance> {
  const { name = 'chat', history = 100, maxQueue, redisOptions } = options
  let broker
  if (redisOptions === undefined) {
    broker = cometRedis({ url: redis.url })
  } else {
    const client = new Redis(redis.url, { lazyConnect: true, ...redisOptions })
    t.teardown(() => client.disconnect())
    broker = cometRedis({ client })
  }
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity, broker })
  const chat = app.comet.channel({ name, history, maxQueue })
  app.get('/comet', (request, reply) => reply.comet(chat, 'cb'))
  return { url: `${await listen(app)}/comet`, chat, logs }
}

/** `?lastEventId=` for a URL. */
export const after = (id: string): string => `?lastEventId=${encodeURIComponent(id)}`

/** Resolves once `check()` holds, asking Redis (or anything async) again after each answer. */
export async function until (check: () => Promise<boolean>): Promise<void> {
  while (!await check()) { /* each check is a round trip to Redis */ }
}
