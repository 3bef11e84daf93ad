// A real Redis Cluster per test (Debian's redis-server 7, never a mock): 3 primaries and 3 replicas
// on free TCP ports of 127.0.0.1, persistence off, a short cluster-node-timeout so that a replica
// takes over within seconds of its primary's death. Made with `redis-cli --cluster create`, ready
// once every node reports cluster_state:ok and every replica is in sync; torn down with the test.
// Without redis-server (or redis-cli) the file skips itself with one line, except on CI.
import { execFile, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import type { Test } from 'tap'
import { missing, replayWithControl, type OpenStream } from '../helpers.js'
import { freePort, ready, REDIS_SERVER_PATH, spawnRedisServer } from './redis-server.js'

export const REDIS_CLI_PATH = process.env.REDIS_CLI_PATH ?? join(dirname(REDIS_SERVER_PATH), 'redis-cli')

/** Milliseconds before a silent node is taken for failed (and a replica takes over), unless a test sets its own. */
export const NODE_TIMEOUT = 1000

export interface ClusterOptions {
  /** cluster-node-timeout of every node: a test that hangs a node longer must not see it failed over. */
  nodeTimeout?: number
}

export interface ClusterNode {
  readonly port: number
  /** A plain client of this node alone (no redirections), for the test's own commands. */
  readonly cli: Redis
  /** SIGKILL: the node is gone at once, with everything it held. */
  kill (): Promise<void>
  /** SIGSTOP: the node hangs (its connections stay open, nothing is answered) until `wake()`. */
  hang (): void
  wake (): void
}

export interface Shard {
  primary: ClusterNode
  replicas: ClusterNode[]
  /** Slot ranges, [first, last] inclusive. */
  slots: Array<[number, number]>
}

export interface LocalCluster {
  nodes: ClusterNode[]
  /** `{ host, port }` of every node, as `new Cluster()` and `cometRedis({ cluster })` take them. */
  startupNodes: Array<{ host: string, port: number }>
  /** The shards as the cluster sees them now (ask again after a failover or a migration). */
  shards (): Promise<Shard[]>
  /** The slot of a key. */
  slotOf (key: string): Promise<number>
  /** Resolves once every running node reports cluster_state:ok and agrees on who serves each slot. */
  settled (): Promise<void>
}

/**
 * A function that starts a cluster for the test it is given (stopped when that test ends), or
 * undefined when redis-server or redis-cli is missing: then the file must define no tests.
 */
export function useCluster (t: Test): ((t: Test, options?: ClusterOptions) => Promise<LocalCluster>) | undefined {
  const how = '`apt-get install redis-server` (or set REDIS_SERVER_PATH and REDIS_CLI_PATH) to run the Redis Cluster tests'
  if (missing(t, REDIS_SERVER_PATH, `no redis-server at ${REDIS_SERVER_PATH}: ${how}`) || missing(t, REDIS_CLI_PATH, `no redis-cli at ${REDIS_CLI_PATH}: ${how}`)) {
    return undefined
  }
  return startCluster
}

/** 3 primaries and 3 replicas, made into a cluster, stopped when `t` ends. */
export async function startCluster (t: Test, options: ClusterOptions = {}): Promise<LocalCluster> {
  const { nodeTimeout = NODE_TIMEOUT } = options
  const dir = mkdtempSync(join(tmpdir(), 'fastify-comet-cluster-'))
  const nodes: ClusterNode[] = []
  t.teardown(async () => {
    await Promise.all(nodes.map(async node => {
      node.cli.disconnect()
      node.wake()
      await node.kill()
    }))
    rmSync(dir, { recursive: true, force: true })
  })
  for (let i = 0; i < 6; i++) nodes.push(await startNode(dir, nodeTimeout))
  await promisify(execFile)(REDIS_CLI_PATH, ['--cluster', 'create', ...nodes.map(node => `127.0.0.1:${node.port}`),
    '--cluster-replicas', '1', '--cluster-yes'])
  const cluster: LocalCluster = {
    nodes,
    startupNodes: nodes.map(node => ({ host: '127.0.0.1', port: node.port })),
    async shards () {
      const text = await anyRunning(nodes).cli.cluster('NODES') as string
      const byId = new Map<string, { node: ClusterNode, primaryId: string, slots: Array<[number, number]>, primary: boolean }>()
      for (const line of text.trim().split('\n')) {
        const [id, address, flags, primaryId, , , , , ...slots] = line.split(' ')
        const port = Number(address.split('@')[0].split(':')[1])
        const node = nodes.find(node => node.port === port) as ClusterNode
        byId.set(id, {
          node,
          primaryId,
          primary: flags.split(',').includes('master') && !flags.split(',').includes('fail'),
          slots: slots.filter(range => !range.startsWith('[')).map(range => {
            const [first, last = first] = range.split('-').map(Number)
            return [first, last]
          })
        })
      }
      return [...byId.entries()].filter(([, entry]) => entry.primary && entry.slots.length > 0).map(([id, entry]) => ({
        primary: entry.node,
        replicas: [...byId.values()].filter(other => other.primaryId === id).map(other => other.node),
        slots: entry.slots
      }))
    },
    async slotOf (key) {
      return await anyRunning(nodes).cli.cluster('KEYSLOT', key) as number
    },
    async settled () {
      for (;;) {
        if (await isSettled(nodes)) return
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    }
  }
  await cluster.settled()
  return cluster
}

/**
 * `perShard` channel names (prefix-N) for each of `shards` (all or some), in their order: the channels
 * (keys and sharded pub/sub channel, which share the name as hash tag) of each live there.
 */
export async function namesOnEveryShard (cluster: LocalCluster, shards: Shard[], perShard: number, prefix = 'room'): Promise<string[][]> {
  const names: string[][] = shards.map(() => [])
  for (let n = 0; names.some(list => list.length < perShard); n++) {
    const name = `${prefix}-${n}`
    const slot = await cluster.slotOf(name)
    const list = names[shards.findIndex(shard => shard.slots.some(([first, last]) => slot >= first && slot <= last))]
    if (list !== undefined && list.length < perShard) list.push(name)
  }
  return names
}

const running = new WeakMap<ClusterNode, ChildProcess>()

function anyRunning (nodes: ClusterNode[]): ClusterNode {
  return nodes.find(node => running.has(node)) as ClusterNode
}

async function isSettled (nodes: ClusterNode[]): Promise<boolean> {
  const views = new Set<string>()
  for (const node of nodes.filter(node => running.has(node))) {
    const info = await node.cli.cluster('INFO') as string
    if (!info.includes('cluster_state:ok')) return false
    const replication = await node.cli.info('replication')
    if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false
    // Who serves each slot, as this node sees it: every node must agree.
    const slots = await node.cli.cluster('SLOTS')
    views.add(JSON.stringify(slots.map(([first, last, primary]) => [first, last, primary?.[1]]).sort((a, b) => a[0] - b[0])))
  }
  return views.size === 1
}

async function startNode (dir: string, nodeTimeout: number): Promise<ClusterNode> {
  const port = await freePort()
  const busPort = await freePort()
  let child: ChildProcess | undefined
  const node: ClusterNode = {
    port,
    cli: new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: null }),
    async kill () {
      const proc = child
      child = undefined
      running.delete(node)
      if (proc === undefined || proc.exitCode !== null) return
      const exited = once(proc, 'exit')
      proc.kill('SIGKILL')
      await exited
    },
    hang () {
      child?.kill('SIGSTOP')
    },
    wake () {
      child?.kill('SIGCONT')
    }
  }
  // The test's own client sees the failures the tests cause: they are expected.
  node.cli.on('error', () => {})
  const started = spawnRedisServer(['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1',
    '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', String(nodeTimeout),
    '--cluster-require-full-coverage', 'no',
    // A replica that lost its primary takes over however long ago it last heard from it (a
    // replica made to lag by the tests would otherwise refuse to).
    '--cluster-replica-validity-factor', '0', '--dir', dir])
  child = started
  running.set(node, started)
  await ready(started)
  await node.cli.connect()
  return node
}

/**
 * What a client's stream got wrong against the acknowledged messages ([value, id], in publish
 * order): each must come once, in order, with its id, none missing, except (with `gapAfterReset`)
 * where a reset came just before. A value never acknowledged (a publish reported failed that Redis
 * ran anyway) may come, once. Also the resets the client was told of.
 */
export function againstAcked (client: OpenStream, acked: Array<[value: string, id: string]>, gapAfterReset = false): { problems: string[], resets: number } {
  const order = new Map(acked.map(([value, id], n) => [value, { n, id }]))
  const problems: string[] = []
  const seen = new Set<unknown>()
  let next = 0
  let resets = 0
  let afterReset = false
  for (const [kind, value, id] of replayWithControl(client.body(), 'cb')) {
    if (kind === 'control') {
      if (value === 'reset') {
        resets++
        afterReset = true
      }
      continue
    }
    if (seen.has(value)) problems.push(`${String(value)} twice`)
    seen.add(value)
    const expected = order.get(value as string)
    if (expected === undefined) continue
    if (expected.id !== id) problems.push(`${String(value)} with id ${String(id)}, not ${expected.id}`)
    if (expected.n < next) problems.push(`${String(value)} out of order`)
    if (expected.n > next && !(gapAfterReset && afterReset)) {
      problems.push(`gap before ${String(value)}: ${acked.slice(next, expected.n).map(([missed]) => missed).join(', ')} missing`)
    }
    afterReset = false
    next = expected.n + 1
  }
  if (next !== acked.length) problems.push(`stopped before ${acked[next]?.[0]}`)
  return { problems, resets }
}
