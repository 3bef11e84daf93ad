// A real redis-server per test file (Debian's, never a mock): started on a unix socket in a
// temporary directory, persistence off, so SIGKILL and start() again is a real outage with an
// empty restart. Without redis-server the file skips itself with one line saying how to get it,
// except on CI (env CI set), where a missing component is a failure.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:net'
import type { Readable } from 'node:stream'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { missing } from '../helpers.js'

export const REDIS_SERVER_PATH = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server'

export interface RedisServer {
  /** The socket's path: what `cometRedis({ url })` and ioredis take. */
  readonly url: string
  /** With `{ tcp: true }`: its TCP port on 127.0.0.1, which replicas need (REPLICAOF takes no socket). */
  readonly port: number
  /** A plain client for the test's own commands (CLIENT KILL, HSET, ...), closed with the file. */
  readonly cli: Redis
  /** Starts the server (again) on the same socket, empty; nothing if it is running. */
  start (): Promise<void>
  /** SIGKILL: the server is gone at once, with everything it held. */
  kill (): Promise<void>
  /** SIGSTOP: the server hangs (connections stay open, nothing is answered) until `wake()`. */
  hang (): void
  /** SIGCONT after `hang()`. */
  wake (): void
}

/**
 * The file's redis-server, started (with `cli` connected) before the file's first test; undefined
 * when it is missing, in which case the file must define no tests (it is skipped or failed).
 */
export function useRedis (t: Test, options: { tcp?: boolean } = {}): RedisServer | undefined {
  if (missing(t, REDIS_SERVER_PATH, `no redis-server at ${REDIS_SERVER_PATH}: \`apt-get install redis-server\` (or set REDIS_SERVER_PATH) to run the Redis tests`)) {
    return undefined
  }
  const dir = mkdtempSync(join(tmpdir(), 'fastify-comet-redis-'))
  const url = join(dir, 'redis.sock')
  let child: ChildProcess | undefined
  const server: RedisServer = {
    url,
    port: 0,
    cli: new Redis(url, { lazyConnect: true, maxRetriesPerRequest: null }),
    async start () {
      if (child !== undefined) return
      if (options.tcp === true && server.port === 0) (server as { port: number }).port = await freePort()
      const started = spawnRedisServer(['--port', String(server.port), '--bind', '127.0.0.1', '--unixsocket', url, '--unixsocketperm', '700', '--dir', dir])
      child = started
      await ready(started)
    },
    async kill () {
      const running = child
      child = undefined
      if (running === undefined || running.exitCode !== null) return
      const exited = once(running, 'exit')
      running.kill('SIGKILL')
      await exited
    },
    hang () {
      child?.kill('SIGSTOP')
    },
    wake () {
      child?.kill('SIGCONT')
    }
  }
  t.teardown(async () => {
    server.cli.disconnect()
    await server.kill()
    rmSync(dir, { recursive: true, force: true })
  })
  // The test's own client sees the outages the tests cause: they are expected.
  server.cli.on('error', () => {})
  t.before(async () => {
    await server.start()
    await server.cli.connect()
  })
  return server
}

/** redis-server with `args`, persistence off. */
export function spawnRedisServer (args: string[]): ChildProcess & { stdout: Readable } {
  return spawn(REDIS_SERVER_PATH, [...args, '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'inherit'] })
}

/** Resolves once `server` says it accepts connections; rejects if it exits first. */
export async function ready (server: ChildProcess & { stdout: Readable }): Promise<void> {
  let output = ''
  server.stdout.setEncoding('utf8')
  await new Promise<void>((resolve, reject) => {
    server.stdout.on('data', (text: string) => {
      output += text
      if (/ready to accept connections/i.test(output)) resolve()
    })
    server.once('exit', code => reject(new Error(`redis-server exited (${code}) before it was ready:\n${output}`)))
  })
  server.stdout.resume()
}

/** A TCP port nobody listens on now. */
export async function freePort (): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as { port: number }
  probe.close()
  await once(probe, 'close')
  return port
}
