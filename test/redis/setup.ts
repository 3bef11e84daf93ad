// Instances of an application that shares named channels through one redis-server: each has its
// own plugin, broker and connections, as separate processes would.
import type { Test } from 'tap'
import type { RedisOptions } from 'ioredis'
import { Cluster, Redis } from 'ioredis'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { build, listen, type LogLine } from '../helpers.js'
import type { CometHistoryChannel } from '../../types/index.js'
import type { RedisServer } from './redis-server.js'

/**
 * The broker's entry point, loaded only by tests that have a redis-server: without one, the code
 * that exists only to talk to Redis is not loaded at all, so coverage does not depend on it.
 */
export function loadRedisBroker (): typeof import('../../lib/redis/index.js') {
  return require('../../lib/redis/index.js')
}

/** The keys of a channel, as the README documents them. */
export function keysOf (name: string): { meta: string, log: string, live: string } {
  return { meta: `comet:{${name}}:meta`, log: `comet:{${name}}:log`, live: `comet:{${name}}:live` }
}

export interface Instance {
  url: string
  chat: CometHistoryChannel<unknown>
  logs: LogLine[]
}

/**
 * An instance serving `GET /comet` from the channel `name` (callback `cb`, no padding, no rotation).
 * `redisOptions` makes the broker's connections from a client with those options (they are duplicated);
 * `commandTimeout` and `maxInFlight` are the broker's.
 */
export async function instance (t: Test, redis: RedisServer, options: { name?: string, history?: number, maxQueue?: number, heartbeat?: number, commandTimeout?: number, maxInFlight?: number, redisOptions?: RedisOptions } = {}): Promise<Instance> {
  const { name = 'chat', history = 100, maxQueue, heartbeat, commandTimeout, maxInFlight, redisOptions } = options
  const { cometRedis } = loadRedisBroker()
  let broker
  if (redisOptions === undefined) {
    broker = cometRedis({ url: redis.url, commandTimeout, maxInFlight })
  } else {
    const client = new Redis(redis.url, { lazyConnect: true, ...redisOptions })
    t.teardown(() => client.disconnect())
    broker = cometRedis({ client, commandTimeout, maxInFlight })
  }
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity, heartbeat, broker })
  const chat = app.comet.channel({ name, history, maxQueue })
  app.get('/comet', (request, reply) => reply.comet(chat, 'cb'))
  return { url: `${await listen(app)}/comet`, chat, logs }
}

/** `?lastEventId=` for a URL. */
export const after = (id: string): string => `?lastEventId=${encodeURIComponent(id)}`

/**
 * Resolves once `check()` holds, asking again after each answer. Each round gives the event loop
 * a turn: a check that fails without I/O (a publish refused while Redis reconnects) must not
 * starve the reconnection it waits for.
 */
export async function until (check: () => Promise<boolean>): Promise<void> {
  while (!await check()) await new Promise(resolve => setImmediate(resolve))
}

/**
 * A unix-socket proxy to `redis`, whose `url` the instances use instead. `silenceSubscribers()`
 * makes every subscriber connection through it deaf and mute without closing it, as a network
 * partition or a host that died would: nothing passes either way, and nobody is told.
 */
export async function silencer (t: Test, redis: RedisServer): Promise<{ url: string, silenceSubscribers: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-comet-proxy-'))
  const url = join(dir, 'proxy.sock')
  const pairs: Array<{ client: Socket, upstream: Socket, subscriber: boolean }> = []
  const server = createServer(client => {
    const upstream = connect(redis.url)
    const pair = { client, upstream, subscriber: false }
    pairs.push(pair)
    client.on('data', (chunk: Buffer) => { if (/subscribe/i.test(chunk.toString('latin1'))) pair.subscriber = true })
    client.pipe(upstream)
    upstream.pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  await new Promise<void>(resolve => server.listen(url, resolve))
  t.teardown(() => {
    for (const { client, upstream } of pairs) {
      client.destroy()
      upstream.destroy()
    }
    server.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    url,
    silenceSubscribers () {
      for (const { client, upstream, subscriber } of pairs) {
        if (!subscriber) continue
        client.unpipe(upstream)
        upstream.unpipe(client)
        // Whatever arrives now is dropped on the floor; both ends stay open.
        client.removeAllListeners('data').resume()
        upstream.resume()
      }
    }
  }
}

/**
 * A unix-socket proxy in front of `redis`, as Sentinel is to a client: `switchTo(other)` cuts every
 * connection through it, and those made again reach `other` (a replica just promoted, say).
 */
export async function failoverProxy (t: Test, redis: RedisServer): Promise<{ url: string, switchTo: (other: RedisServer) => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-comet-proxy-'))
  const url = join(dir, 'proxy.sock')
  let target = redis
  const pairs = new Set<[Socket, Socket]>()
  const server = createServer(client => {
    const upstream = connect(target.url)
    const pair: [Socket, Socket] = [client, upstream]
    pairs.add(pair)
    client.pipe(upstream)
    upstream.pipe(client)
    for (const end of pair) {
      end.on('error', () => {})
      end.on('close', () => {
        pairs.delete(pair)
        client.destroy()
        upstream.destroy()
      })
    }
  })
  await new Promise<void>(resolve => server.listen(url, resolve))
  const cut = (): void => {
    for (const [client, upstream] of pairs) {
      client.destroy()
      upstream.destroy()
    }
  }
  t.teardown(() => {
    cut()
    server.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return {
    url,
    switchTo (other) {
      target = other
      cut()
    }
  }
}

/** An instance on a Redis Cluster serving `GET /comet/:name` from each of the named channels `names`. */
export interface ClusterInstance {
  origin: string
  channels: Map<string, CometHistoryChannel<unknown>>
  logs: LogLine[]
}

/**
 * An instance of an application on the cluster whose nodes are `startupNodes`: through
 * `cometRedis({ cluster })`, or with `{ client: true }` through an ioredis Cluster of the
 * application's (duplicated by the broker); `commandTimeout` and `maxInFlight` are the broker's.
 */
export async function clusterInstance (t: Test, startupNodes: Array<{ host: string, port: number }>, names: string[], options: { client?: boolean, history?: number, commandTimeout?: number, maxInFlight?: number } = {}): Promise<ClusterInstance> {
  const { cometRedis } = loadRedisBroker()
  const { commandTimeout, maxInFlight } = options
  let broker
  if (options.client === true) {
    const client = new Cluster(startupNodes, { lazyConnect: true })
    t.teardown(() => client.disconnect())
    broker = cometRedis({ client, commandTimeout, maxInFlight })
  } else {
    broker = cometRedis({ cluster: startupNodes, commandTimeout, maxInFlight })
  }
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity, broker })
  const channels = new Map(names.map(name => [name, app.comet.channel({ name, history: options.history ?? 1000 })]))
  app.get<{ Params: { name: string } }>('/comet/:name', (request, reply) => reply.comet(channels.get(request.params.name) as CometHistoryChannel<unknown>, 'cb'))
  return { origin: await listen(app), channels, logs }
}
