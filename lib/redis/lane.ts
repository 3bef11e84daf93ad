// One connection to Redis and the commands in flight on it, bounded: while Redis is slow or hung,
// nothing piles up in memory or in the socket. Past the bound, a publish fails at once (it was
// never sent, so it can never run later) and a read waits its turn in order, urgent reads first.
// A command's time counts from when it is sent, never while it waits its turn. A command with no
// answer in time, while no other answer came either, means the connection is silent: it is taken
// for lost and made again, which fails everything still in flight on it (the connection's options
// flush its queue on close). A connection that answers, however late, is only slow: it is kept.
import type { Cluster, Redis } from 'ioredis'

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
 * A cluster client, which cannot tell which node went silent, closes them all and starts again.
 */
export function dropSilent (connection: Connection): void {
  if (connection.isCluster) (connection as Cluster).disconnect(true)
  else (connection as Redis).stream.destroy()
}

export class RedisLane {
  readonly connection: Connection
  readonly #max: number
  readonly #timeout: number
  readonly #lost: (err: Error) => void
  #inFlight = 0
  /** Answers (or failures) so far: a connection that gave one since a command was sent is not silent. */
  #heard = 0
  readonly #waiting: Array<() => void> = []

  /** `lost` hears of a silent connection (once per command that found it so) before it is made again. */
  constructor (connection: Connection, max: number, timeout: number, lost: (err: Error) => void) {
    this.connection = connection
    this.#max = max
    this.#timeout = timeout
    this.#lost = lost
  }

  /** Sends the command now, or rejects at once when `max` commands already wait for an answer. */
  async send<T> (command: (connection: Connection) => Promise<T>): Promise<T> {
    if (this.#inFlight >= this.#max) throw new Error(`${this.#max} commands already wait for Redis's answer`)
    return await this.#run(command)
  }

  /** Sends the command once fewer than `max` wait for an answer: in order, an urgent one before the others. */
  async queue<T> (command: (connection: Connection) => Promise<T>, urgent = false): Promise<T> {
    while (this.#inFlight >= this.#max) {
      await new Promise<void>(resolve => urgent ? this.#waiting.unshift(resolve) : this.#waiting.push(resolve))
    }
    return await this.#run(command)
  }

  async #run<T> (command: (connection: Connection) => Promise<T>): Promise<T> {
    this.#inFlight++
    const heard = this.#heard
    const sent = command(this.connection)
    // Counted until Redis answers or the connection closes, not until the caller gives up.
    sent.then(this.#settled, this.#settled)
    return await answered(sent, this.#timeout, err => this.#silent(err, heard))
  }

  readonly #settled = (): void => {
    this.#heard++
    this.#inFlight--
    this.#waiting.shift()?.()
  }

  #silent (err: Error, heard: number): void {
    // Already closed and being made again, or not silent.
    if (this.connection.status !== 'ready' || this.#heard !== heard) return
    this.#lost(err)
    dropSilent(this.connection)
  }
}
