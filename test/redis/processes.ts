// Instances of an application in child processes (test/fixtures/redis-instance.js, on the built
// package) sharing the channel "chat" through one redis-server, and how a test talks to them.
import { resolve } from 'node:path'
import type { Test } from 'tap'
import { startServer, type ChildServer } from '../child-server.js'
import { open, type OpenStream } from '../helpers.js'
import type { RedisServer } from './redis-server.js'
import { after } from './setup.js'

const FIXTURE = resolve(__dirname, '../fixtures/redis-instance.js')

/** `count` instances on `redis`, stopped when `t` ends; `env` as the fixture documents it. */
export function startInstances (t: Test, redis: RedisServer, count: number, env: Record<string, string> = {}): Promise<ChildServer[]> {
  return Promise.all(Array.from({ length: count }, () => startServer(t, FIXTURE, { REDIS_URL: redis.url, ...env })))
}

/** POST /publish on `instance`: the response as it came. */
export function post (instance: ChildServer, message: unknown): Promise<Response> {
  return fetch(`${instance.origin}/publish`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message })
  })
}

/** Publishes through `instance`; resolves with the id. */
export async function publish (instance: ChildServer, message: unknown): Promise<string> {
  const res = await post(instance, message)
  const body = await res.json() as { id: string }
  if (res.status !== 200) throw new Error(`publish answered ${res.status}: ${JSON.stringify(body)}`)
  return body.id
}

/**
 * Publishes through a fresh `instance` once it can: with a short commandTimeout an instance may
 * listen before its connection to Redis is ready (the broker waits that long at start), and its
 * publishes answer 503 until it is. Each try is a request that Redis never saw.
 */
export async function publishOnceReady (instance: ChildServer, message: unknown): Promise<string> {
  for (;;) {
    const res = await post(instance, message)
    if (res.status === 200) return (await res.json() as { id: string }).id
    await res.body?.cancel()
  }
}

/** A raw client of `instance`'s /comet (callback cb), resuming after `lastEventId`. */
export function subscribe (instance: ChildServer, lastEventId: string): Promise<OpenStream> {
  return open(`${instance.origin}/comet${after(lastEventId)}`)
}

export const seq = (id: string): number => Number(id.split('-')[1])
export const epochOf = (id: string): string => id.split('-')[0]
