// This instance's three connections to Redis: one for publishing, which fails fast while Redis is
// away or slow instead of queueing; one for reading logs (channels catching up, clients resuming),
// so that publishes never wait behind reads, which wait their turn instead of piling up on Redis;
// and one subscriber, shared by every named channel followed here. After the subscriber reconnects,
// it subscribes again and then every channel reads the log, so what was published meanwhile is
// delivered, once. Nothing is queued for a connection that is down: what to subscribe to is
// settled once it is back, from the channels followed then. On a Redis Cluster, each connection
// is a cluster client, and messages go out on sharded pub/sub: each channel's from its slot's
// primary, to the instances that follow it there (see subscribe()).
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Cluster, Redis } from 'ioredis'
import { FST_COMET_PUBLISH_FAILED } from '../errors.js'
import { MAX_DELAY } from '../options.js'
import { answered, dropSilent, nameOf, RedisLane, type Connection } from './lane.js'
import { channelKeys, PUBLISH, READ, RETIRE_EPOCH, SHARDED_PUBLISH, SINCE, type ChannelKeys } from './scripts.js'
import { subscriptionFailure } from './subscription-failure.js'
import { Topic, type LogPage, type LogReader, type TopicListener } from './topic.js'

type ReadReply = [epoch: string, last: number, lastToken: string, entries?: Array<[id: string, fields: string[]]>, tokenAtAfter?: string | null]

type CometRedis = Connection & CometCommands

interface CometCommands {
  cometPublish (meta: string, log: string, epoch: string, history: number, message: string, live: string, historyTtl: number): Promise<string>
  cometRead (meta: string, log: string, epoch: string, knownEpoch: string, after: number, count: number): Promise<ReadReply>
  cometSince (meta: string, log: string, since: number): Promise<[epoch: string, from: number]>
  cometRetireEpoch (meta: string, log: string, epoch: string, knownEpoch: string, seq: number, token: string): Promise<number>
}

const newEpoch = (): string => randomBytes(6).toString('hex')

/** How long a channel waits to read its log again after a read failed with the connection up. */
const RETRY_DELAY = 500
/** Tries of a client's replay read before its stream is ended: Redis may be briefly busy. */
const REPLAY_TRIES = 3
/**
 * Each connection is asked whether it is still there every this many commandTimeouts (and must
 * answer within one): a connection that went silent without closing (a partition, a host that
 * died, a hung server) would otherwise leave the instance deaf, or publishing into a socket
 * nobody reads, until TCP keepalive gives up, many minutes later.
 */
const PING_EVERY = 5
/** Reads of logs sent at a time: a resume storm waits its turn here, not on Redis. */
const READS_IN_FLIGHT = 4

export interface RedisLinkOptions {
  prefix: string
  commandTimeout: number
  /** Publishes (and retirements of an epoch) waiting for Redis's answer at most; more fail at once. */
  maxInFlight: number
}

function ping (link: RedisLink): void {
  link.ping()
}

// For replies nothing waits for; a callback also keeps a failed one from being unhandled.
function ignoreReply (): void {}

export class RedisLink implements LogReader {
  readonly #commands: RedisLane
  readonly #reads: RedisLane
  readonly #subscriber: Connection
  /** A cluster: sharded pub/sub. */
  readonly #sharded: boolean
  readonly #prefix: string
  readonly #commandTimeout: number
  readonly #log: FastifyBaseLogger
  /** The channels followed here, by their pub/sub channel. */
  readonly #topics = new Map<string, Topic>()
  #down = false
  /** Reads stale channels again after a read failed with the connection up (see readFailed). */
  #retry: NodeJS.Timeout | undefined
  /** Pings the connections (see PING_EVERY); the subscriber only while channels are followed. */
  readonly #pinger: NodeJS.Timeout

  constructor (commands: Connection, reads: Connection, subscriber: Connection, options: RedisLinkOptions, log: FastifyBaseLogger) {
    const { prefix, commandTimeout, maxInFlight } = options
    this.#sharded = subscriber.isCluster
    commands.defineCommand('cometPublish', { numberOfKeys: 2, lua: this.#sharded ? SHARDED_PUBLISH : PUBLISH })
    commands.defineCommand('cometRetireEpoch', { numberOfKeys: 2, lua: RETIRE_EPOCH })
    reads.defineCommand('cometRead', { numberOfKeys: 2, lua: READ })
    reads.defineCommand('cometSince', { numberOfKeys: 2, lua: SINCE })
    const lost = (err: Error): void => this.#lost(err)
    this.#commands = new RedisLane(commands, maxInFlight, commandTimeout, lost)
    this.#reads = new RedisLane(reads, READS_IN_FLIGHT, commandTimeout, lost)
    this.#subscriber = subscriber
    this.#prefix = prefix
    this.#commandTimeout = commandTimeout
    this.#log = log
    subscriber.on(this.#sharded ? 'smessage' : 'message', (channel: string, text: string) => this.#onMessage(channel, text))
    if (this.#sharded) {
      // The cluster client subscribed again on its own after a node failed, a slot moved or the
      // whole cluster came back: what was published meanwhile is read from the logs.
      subscriber.on('subscribersReady', () => {
        for (const topic of this.#topics.values()) topic.catchUp()
      })
    } else {
      subscriber.on('ready', () => this.#resubscribe())
    }
    // A read that failed while Redis was away is tried again as soon as reads can run.
    reads.on('ready', () => this.#catchUpStale())
    const back = (): void => this.#back()
    for (const connection of [commands, reads, subscriber]) {
      connection.on('error', lost)
      connection.on('ready', back)
    }
    if (this.#sharded) {
      // A node's connection that a lane dropped alone is made again with the cluster still ready.
      for (const connection of [commands, reads]) connection.on('+node', (node: Redis) => node.on('ready', back))
    }
    this.#pinger = setInterval(ping, Math.min(commandTimeout * PING_EVERY, MAX_DELAY), this).unref()
  }

  /**
   * Resolves once commands and reads can run (publish, and `position()` at a page's render), or
   * after `ms` (then it logs why, and publishing fails until Redis is back).
   */
  async connected (ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const lanes = [this.#commands.connection, this.#reads.connection]
    const waits: Array<() => void> = []
    const ready = await Promise.race([
      // Made just now, in the same turn: neither can be ready yet.
      Promise.all(lanes.map(async connection => await new Promise<void>(resolve => {
        connection.once('ready', resolve)
        waits.push(() => connection.off('ready', resolve))
      }))).then(() => true),
      new Promise<boolean>(resolve => { timer = setTimeout(resolve, ms, false) })
    ])
    clearTimeout(timer)
    for (const stop of waits) stop()
    if (!ready) this.#log.warn(`fastify-comet: Redis did not answer within ${ms} ms of starting; publishing to named channels fails until it does`)
  }

  /** Stores and sends a message; resolves with its id, or rejects with FST_COMET_PUBLISH_FAILED. */
  async publish (keys: ChannelKeys, name: string, history: number, historyTtl: number, message: string): Promise<string> {
    try {
      return await this.#commands.send(keys.meta, commands => (commands as CometRedis).cometPublish(keys.meta, keys.log, newEpoch(), history, message, keys.live, historyTtl))
    } catch (err) {
      throw new FST_COMET_PUBLISH_FAILED(name, (err as Error).message, { cause: err })
    }
  }

  keysOf (name: string): ChannelKeys {
    return channelKeys(this.#prefix, name)
  }

  /** Starts following a channel: its listener hears where it stands, then every message. */
  follow (keys: ChannelKeys, listener: TopicListener): Topic {
    const topic = new Topic(keys, this, listener)
    this.#topics.set(topic.keys.live, topic)
    // Subscribed first, then the log is read: nothing published in between is missed. While the
    // subscriber is down, nothing is sent: #resubscribe() subscribes and reads once it is back.
    // A cluster client keeps its subscriptions itself (and queues them while the cluster is away).
    if (this.#sharded) {
      (this.#subscriber as Cluster).ssubscribe(topic.keys.live, err => this.#subscribed(err, topic))
    } else if (this.#subscriber.status === 'ready') {
      this.#subscriber.subscribe(topic.keys.live, err => this.#subscribed(err, topic))
    }
    return topic
  }

  unfollow (topic: Topic): void {
    topic.closed = true
    this.#topics.delete(topic.keys.live)
    // A subscription goes with its connection: a subscriber that is down has nothing to undo.
    if (this.#sharded) (this.#subscriber as Cluster).sunsubscribe(topic.keys.live, ignoreReply)
    else if (this.#subscriber.status === 'ready') this.#subscriber.unsubscribe(topic.keys.live, ignoreReply)
  }

  /** A page of the log for a channel catching up: read before clients' replays. */
  async read (keys: ChannelKeys, epoch: string, after: number, count: number): Promise<LogPage> {
    return await this.#read(keys, epoch, after, count, true)
  }

  /**
   * A page of the log for a client's replay: in turn with the others, and tried again (Redis may
   * be briefly busy) before the stream is ended for it.
   */
  async replay (keys: ChannelKeys, epoch: string, after: number, count: number): Promise<LogPage> {
    return await this.#forReplay(() => this.#read(keys, epoch, after, count, false))
  }

  /**
   * Where a client with no id replays from to get what was published in the last `since` ms, by
   * Redis's clock: the channel's epoch and the seq, or 0 when some of it is no longer held (see
   * SINCE). In turn with the replays, and tried again as they are.
   */
  async since (keys: ChannelKeys, since: number): Promise<{ epoch: string, from: number }> {
    const [epoch, from] = await this.#forReplay(() => this.#reads.queue(keys.meta, reads => (reads as CometRedis).cometSince(keys.meta, keys.log, since), false))
    return { epoch, from }
  }

  async #forReplay<T> (read: () => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await read()
      } catch (err) {
        if (tries === REPLAY_TRIES) throw err
        this.#log.debug({ err }, `fastify-comet: could not read a channel's log for a replay; trying again in ${RETRY_DELAY * tries} ms`)
        await new Promise(resolve => setTimeout(resolve, RETRY_DELAY * tries))
      }
    }
  }

  async #read (keys: ChannelKeys, epoch: string, after: number, count: number, urgent: boolean): Promise<LogPage> {
    const [logEpoch, last, lastToken, entries, tokenAtAfter] = await this.#reads.queue(keys.meta, reads =>
      (reads as CometRedis).cometRead(keys.meta, keys.log, newEpoch(), epoch, after, count), urgent)
    return {
      epoch: logEpoch,
      last,
      lastToken,
      // Entry ids are `0-SEQ`; the fields are m (the message) and t (its token).
      entries: entries?.map(([id, fields]) => [Number(id.slice(2)), fields[1], fields[3]]),
      tokenAtAfter: tokenAtAfter ?? undefined
    }
  }

  async retireEpoch (keys: ChannelKeys, epoch: string, seq: number, token: string): Promise<void> {
    await this.#commands.send(keys.meta, commands => (commands as CometRedis).cometRetireEpoch(keys.meta, keys.log, newEpoch(), epoch, seq, token))
  }

  readFailed (err: Error): void {
    // With the connection down, its 'ready' reads every stale channel again. Up, Redis was slow
    // or busy (a timeout, BUSY, a failover's pause): nothing else would prompt another read, and a
    // quiet channel's streams would wait for its next message. One timer for all of them.
    if (this.#reads.connection.status !== 'ready') return
    this.#log.debug({ err }, `fastify-comet: could not read a channel's log from Redis; trying again in ${RETRY_DELAY} ms`)
    this.#retry ??= setTimeout(() => {
      this.#retry = undefined
      this.#catchUpStale()
    }, RETRY_DELAY).unref()
  }

  /**
   * A connection that does not answer is taken for lost: dropped and made again (the subscriber
   * then catches up). One that is down is already being made again. On a cluster, each lane asks
   * every primary, and drops only a silent one's connection; the subscriber's connections are
   * ioredis's own (one per primary), made again by it when a node ends, fails over or loses its
   * slots: asking one node through the cluster client tells nothing of them.
   */
  ping (): void {
    this.#commands.ping()
    this.#reads.ping()
    if (this.#sharded || this.#topics.size === 0 || this.#subscriber.status !== 'ready') return
    answered(this.#subscriber.ping(), this.#commandTimeout, (err: Error) => {
      this.#lost(err) // said once, as when the connection fails loudly
      dropSilent(this.#subscriber as Redis)
    }).then(undefined, ignoreReply)
  }

  close (): void {
    clearInterval(this.#pinger)
    clearTimeout(this.#retry)
    this.#commands.connection.disconnect()
    this.#reads.connection.disconnect()
    this.#subscriber.disconnect()
  }

  // "EPOCH SEQ PREVTOKEN TOKEN MESSAGE" (see scripts.ts)
  #onMessage (channel: string, text: string): void {
    const topic = this.#topics.get(channel)
    const seqAt = text.indexOf(' ') + 1
    const prevAt = text.indexOf(' ', seqAt) + 1
    const tokenAt = text.indexOf(' ', prevAt) + 1
    const messageAt = text.indexOf(' ', tokenAt) + 1
    if (topic === undefined || prevAt === 0 || tokenAt === 0 || messageAt === 0) return
    topic.live(text.slice(0, seqAt - 1), Number(text.slice(seqAt, prevAt - 1)), text.slice(prevAt, tokenAt - 1),
      text.slice(tokenAt, messageAt - 1), text.slice(messageAt))
  }

  // The subscriber (re)connected: subscribe to every channel again, in one command, then read
  // each log from where this instance stopped.
  #resubscribe (): void {
    if (this.#topics.size === 0) return
    // Dropped again before it could subscribe, the next 'ready' does it again.
    this.#subscriber.subscribe(...this.#topics.keys(), err => {
      for (const topic of this.#topics.values()) this.#subscribed(err, topic)
    })
  }

  // Failed with the connection up (an ACL without the channel, a cluster node that cannot take it
  // now), the instance may never hear a live message: said loudly, once per channel, with why.
  // Dropped meanwhile, 'ready' subscribes again.
  #subscribed (err: Error | null | undefined, topic: Topic): void {
    if (err != null && this.#subscriber.status === 'ready') {
      this.#log.error({ err, channel: topic.keys.live }, subscriptionFailure(err))
    }
    topic.catchUp()
  }

  #catchUpStale (): void {
    for (const topic of this.#topics.values()) if (topic.stale) topic.catchUp()
  }

  #lost (err: Error): void {
    if (this.#down) return
    this.#down = true
    this.#log.warn({ err }, 'fastify-comet: lost the connection to Redis; named channels catch up once it is back')
  }

  // Back once every connection is, on a cluster to the primary of every slot: while one shard is
  // down, the others' connections are ready, and each failed attempt at the dead one would say
  // "lost" after them, many times a second.
  #back (): void {
    if (!this.#down || !wholeConnection(this.#commands.connection) || !wholeConnection(this.#reads.connection) || this.#subscriber.status !== 'ready') return
    this.#down = false
    this.#log.info('fastify-comet: connected to Redis again')
  }
}

/** Ready, and on a cluster connected to the primary of every slot. */
function wholeConnection (connection: Connection): boolean {
  if (connection.status !== 'ready') return false
  if (!connection.isCluster) return true
  const cluster = connection as Cluster
  const ready = new Set(cluster.nodes('master').filter(node => node.status === 'ready').map(nameOf))
  // (Slots no node serves are holes of the array, which every() skips.)
  return cluster.slots.every(owners => ready.has(owners[0]))
}
