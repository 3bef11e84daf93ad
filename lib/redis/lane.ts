// One connection to Redis and the commands in flight on it, bounded for each server: while Redis
// is slow or hung, nothing piles up in memory or in the socket. On a Redis Cluster, each primary
// has a bound of its own, so a node that hangs holds its own, never the other shards'. Past the
// bound, a publish fails at once (it was never sent, so it can never run later) and a read waits
// its turn in order, urgent reads first. A command's time counts from when it is sent, never while
// it waits its turn. A command with no answer in time, while its server gave no other answer
// either, means the connection to that server is silent: it is taken for lost and made again,
// which fails everything still in flight on it (the connection's options flush its queue on
// close). A connection that answers, however late, is only slow: it is kept.
import type { Cluster, Redis } from 'ioredis'
import { slotOf } from './slot.js'

/** A connection to one Redis server, or a client of a Redis Cluster (connections to each node). */
export type Connection = Redis | Cluster

/**
 * The command's reply, or a rejection once `ms` have passed and the reply is still not in (then
 * `late()` is told first). The deadline is checked again after the event loop's next poll: an
 * instance busy delivering (one turn can write hundreds of messages to thousands of sockets) reads
 * Redis's answer late, and must not call a publish that Redis stored and answered at once a
 * failure (the application would publish it again).
 */
export async function answered<T> (command: Promise<T>, ms: number, late: (err: Error) => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((resolve, reject) => { timer = setTimeout(expire, ms, reject, ms, late) })
  try {
    return await Promise.race([command, expired])
  } finally {
    clearTimeout(timer)
  }
}

function expire (reject: (err: Error) => void, ms: number, late: (err: Error) => void): void {
  // setImmediate runs after the poll phase, which reads whatever answer has arrived meanwhile.
  setImmediate(() => {
    const err = new Error(`Redis command timed out: no answer within ${ms} ms`)
    late(err)
    reject(err)
  })
}

/**
 * Closes a silent connection at once, and ioredis makes it again: a polite end (disconnect())
 * would wait for a peer that does not answer, with the connection still taken for ready meanwhile.
 * On a cluster, only the connection to the silent node: ioredis forgets it, and connects to that
 * node again when a command next goes there; the other nodes' connections are not disturbed.
 */
export function dropSilent (connection: Redis): void {
  connection.stream.destroy()
}

/** A server's "host:port", as a cluster's slot table names it. */
export function nameOf (node: Redis): string {
  return `${String(node.options.host)}:${String(node.options.port)}`
}

/** The commands sent to one server and waiting for its answer, and those waiting their turn. */
class Budget {
  inFlight = 0
  /** Answers (or failures) so far: a server that gave one since a command was sent is not silent. */
  heard = 0
  readonly waiting: Array<() => void> = []
}

export class RedisLane {
  readonly connection: Connection
  readonly #max: number
  readonly #timeout: number
  readonly #lost: (err: Error) => void
  /** By server: '' for one server, each node's "host:port" on a cluster (a handful, kept). */
  readonly #budgets = new Map<string, Budget>()

  /** `lost` hears of a silent connection (once per command that found it so) before it is made again. */
  constructor (connection: Connection, max: number, timeout: number, lost: (err: Error) => void) {
    this.connection = connection
    this.#max = max
    this.#timeout = timeout
    this.#lost = lost
  }

  /**
   * Sends the command now, or rejects at once when `max` commands already wait for the answer of
   * the server that holds `key` (any key the command touches).
   */
  async send<T> (key: string, command: (connection: Connection) => Promise<T>): Promise<T> {
    const node = this.#nodeOf(key)
    if (this.#budget(node).inFlight >= this.#max) throw new Error(`${this.#max} commands already wait for Redis's answer`)
    return await this.#run(node, command)
  }

  /**
   * Sends the command once fewer than `max` wait for the answer of the server that holds `key`:
   * in order, an urgent one before the others.
   */
  async queue<T> (key: string, command: (connection: Connection) => Promise<T>, urgent = false): Promise<T> {
    const node = this.#nodeOf(key)
    const budget = this.#budget(node)
    while (budget.inFlight >= this.#max) {
      await new Promise<void>(resolve => urgent ? budget.waiting.unshift(resolve) : budget.waiting.push(resolve))
    }
    return await this.#run(node, command)
  }

  /** Asks each server (each primary of a cluster) that has room whether it is still there. */
  ping (): void {
    const servers: Array<[string, Redis]> = this.connection.isCluster
      ? (this.connection as Cluster).nodes('master').map(node => [nameOf(node), node])
      : [['', this.connection as Redis]]
    for (const [node, server] of servers) {
      if (server.status === 'ready' && this.#budget(node).inFlight < this.#max) this.#run(node, () => server.ping()).then(undefined, ignoreFailure)
    }
  }

  /** The server that serves `key`: its slot's primary on a cluster (none while the slots are not known yet). */
  #nodeOf (key: string): string {
    return this.connection.isCluster ? (this.connection as Cluster).slots[slotOf(key)]?.[0] ?? '' : ''
  }

  #budget (node: string): Budget {
    let budget = this.#budgets.get(node)
    if (budget === undefined) this.#budgets.set(node, budget = new Budget())
    return budget
  }

  async #run<T> (node: string, command: (connection: Connection) => Promise<T>): Promise<T> {
    const budget = this.#budget(node)
    budget.inFlight++
    const heard = budget.heard
    const sent = command(this.connection)
    // Counted until Redis answers or the connection closes, not until the caller gives up.
    const settled = (): void => {
      budget.heard++
      budget.inFlight--
      budget.waiting.shift()?.()
    }
    sent.then(settled, settled)
    return await answered(sent, this.#timeout, err => this.#silent(err, node, budget.heard === heard))
  }

  #silent (err: Error, node: string, silent: boolean): void {
    const server = this.connection.isCluster
      ? (this.connection as Cluster).nodes().find(server => nameOf(server) === node)
      : this.connection as Redis
    // Already closed and being made again, or not silent.
    if (server?.status !== 'ready' || !silent) return
    this.#lost(err)
    dropSilent(server)
  }
}

// A ping that fails says so through #silent, or through the connection's own events.
function ignoreFailure (): void {}
