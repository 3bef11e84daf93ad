// This instance's two connections to Redis: one for commands (publish, read the log), which fails
// fast while Redis is away instead of queueing, and one subscriber, shared by every named channel
// followed here. After the subscriber reconnects, it subscribes again and then every channel reads
// the log, so what was published meanwhile is delivered, once.
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { FST_COMET_PUBLISH_FAILED } from './errors.js'
import { MAX_DELAY } from './options.js'
import { channelKeys, PUBLISH, READ, RETIRE_EPOCH, type ChannelKeys } from './redis-scripts.js'
import { Topic, type LogPage, type LogReader, type TopicListener } from './redis-topic.js'

type ReadReply = [epoch: string, last: number, lastToken: string, entries?: Array<[id: string, fields: string[]]>, tokenAtAfter?: string | null]

interface CometCommands {
  cometPublish (meta: string, log: string, epoch: string, history: number, message: string, live: string): Promise<string>
  cometRead (meta: string, log: string, epoch: string, knownEpoch: string, after: number, count: number): Promise<ReadReply>
  cometRetireEpoch (meta: string, log: string, epoch: string, knownEpoch: string, seq: number, token: string): Promise<number>
}

const newEpoch = (): string => randomBytes(6).toString('hex')

/** How long a channel waits to read its log again after a read failed with the connection up. */
const RETRY_DELAY = 500
/**
 * The subscriber is asked whether it is still there every this many commandTimeouts (and must
 * answer within one): a connection that went silent without closing (a partition, a host that
 * died) would otherwise leave the instance deaf until TCP keepalive gives up, many minutes later.
 */
const PING_EVERY = 5

/**
 * The command's reply, or a rejection once `ms` have passed and the reply is still not in. The
 * deadline is checked again after the event loop's next poll: an instance busy delivering (one
 * turn can write hundreds of messages to thousands of sockets) reads Redis's answer late, and
 * must not call a publish that Redis stored and answered at once a failure (the application
 * would publish it again).
 */
async function answered<T> (command: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((resolve, reject) => { timer = setTimeout(expire, ms, reject, ms) })
  try {
    return await Promise.race([command, late])
  } finally {
    clearTimeout(timer)
  }
}

function expire (reject: (err: Error) => void, ms: number): void {
  // setImmediate runs after the poll phase, which reads whatever answer has arrived meanwhile.
  setImmediate(reject, new Error(`Redis command timed out: no answer within ${ms} ms`))
}

function pingSubscriber (link: RedisLink): void {
  link.pingSubscriber()
}

// For replies nothing waits for; a callback also keeps a failed one from being unhandled.
function ignoreReply (): void {}

export class RedisLink implements LogReader {
  readonly #commands: Redis & CometCommands
  readonly #subscriber: Redis
  readonly #prefix: string
  readonly #commandTimeout: number
  readonly #log: FastifyBaseLogger
  /** The channels followed here, by their pub/sub channel. */
  readonly #topics = new Map<string, Topic>()
  #down = false
  /** Reads stale channels again after a read failed with the connection up (see readFailed). */
  #retry: NodeJS.Timeout | undefined
  /** Pings the subscriber while channels are followed (see PING_EVERY). */
  #pinger: NodeJS.Timeout | undefined

  constructor (commands: Redis, subscriber: Redis, prefix: string, commandTimeout: number, log: FastifyBaseLogger) {
    commands.defineCommand('cometPublish', { numberOfKeys: 2, lua: PUBLISH })
    commands.defineCommand('cometRead', { numberOfKeys: 2, lua: READ })
    commands.defineCommand('cometRetireEpoch', { numberOfKeys: 2, lua: RETIRE_EPOCH })
    this.#commands = commands as Redis & CometCommands
    this.#subscriber = subscriber
    this.#prefix = prefix
    this.#commandTimeout = commandTimeout
    this.#log = log
    subscriber.on('message', (channel: string, text: string) => this.#onMessage(channel, text))
    subscriber.on('ready', () => this.#resubscribe())
    // A read that failed while Redis was away is tried again as soon as commands can run.
    commands.on('ready', () => this.#catchUpStale())
    for (const connection of [commands, subscriber]) {
      connection.on('error', (err: Error) => this.#lost(err))
      connection.on('ready', () => this.#back())
    }
  }

  /** Resolves once commands can run, or after `ms` (then it logs why, and publishing fails until Redis is back). */
  async connected (ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    let onReady: (() => void) | undefined
    const ready = await new Promise<boolean>(resolve => {
      onReady = () => resolve(true)
      this.#commands.once('ready', onReady)
      timer = setTimeout(resolve, ms, false)
    })
    clearTimeout(timer)
    this.#commands.off('ready', onReady as () => void)
    if (!ready) this.#log.warn(`fastify-comet: Redis did not answer within ${ms} ms of starting; publishing to named channels fails until it does`)
  }

  /** Stores and sends a message; resolves with its id, or rejects with FST_COMET_PUBLISH_FAILED. */
  async publish (keys: ChannelKeys, name: string, history: number, message: string): Promise<string> {
    try {
      return await answered(this.#commands.cometPublish(keys.meta, keys.log, newEpoch(), history, message, keys.live), this.#commandTimeout)
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
    this.#pinger ??= setInterval(pingSubscriber, Math.min(this.#commandTimeout * PING_EVERY, MAX_DELAY), this).unref()
    // Subscribed first, then the log is read: nothing published in between is missed.
    // (Should the connection drop first, #resubscribe() subscribes and reads again when it is back.)
    this.#subscriber.subscribe(topic.keys.live, err => this.#subscribed(err, topic))
    return topic
  }

  unfollow (topic: Topic): void {
    topic.closed = true
    this.#topics.delete(topic.keys.live)
    if (this.#topics.size === 0) {
      clearInterval(this.#pinger)
      this.#pinger = undefined
    }
    // Gone with the connection, it is not subscribed again either way.
    this.#subscriber.unsubscribe(topic.keys.live, ignoreReply)
  }

  async read (keys: ChannelKeys, epoch: string, after: number, count: number): Promise<LogPage> {
    const [logEpoch, last, lastToken, entries, tokenAtAfter] = await answered(this.#commands.cometRead(keys.meta, keys.log, newEpoch(), epoch, after, count), this.#commandTimeout)
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
    await answered(this.#commands.cometRetireEpoch(keys.meta, keys.log, newEpoch(), epoch, seq, token), this.#commandTimeout)
  }

  readFailed (err: Error): void {
    // With the connection down, its 'ready' reads every stale channel again. Up, Redis was slow
    // or busy (a timeout, BUSY, a failover's pause): nothing else would prompt another read, and a
    // quiet channel's streams would wait for its next message. One timer for all of them.
    if (this.#commands.status !== 'ready') return
    this.#log.debug({ err }, `fastify-comet: could not read a channel's log from Redis; trying again in ${RETRY_DELAY} ms`)
    this.#retry ??= setTimeout(() => {
      this.#retry = undefined
      this.#catchUpStale()
    }, RETRY_DELAY).unref()
  }

  /** A subscriber that does not answer is taken for lost: dropped and made again, it then catches up. */
  pingSubscriber (): void {
    answered(this.#subscriber.ping(), this.#commandTimeout).then(undefined, (err: Error) => {
      this.#lost(err) // said once, as when the connection fails loudly
      this.#subscriber.disconnect(true) // already reconnecting, this changes nothing
    })
  }

  close (): void {
    clearInterval(this.#pinger)
    clearTimeout(this.#retry)
    this.#commands.disconnect()
    this.#subscriber.disconnect()
  }

  // "EPOCH SEQ PREVTOKEN TOKEN MESSAGE" (see redis-scripts.ts)
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

  // Refused with the connection up (an ACL without the channel, say), the instance would never hear
  // a live message: said loudly, once per channel. Dropped meanwhile, 'ready' subscribes again.
  #subscribed (err: Error | null | undefined, topic: Topic): void {
    if (err != null && this.#subscriber.status === 'ready') {
      this.#log.error({ err, channel: topic.keys.live }, 'fastify-comet: Redis refused the subscription to a channel: this instance hears its messages only when it reads the log')
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

  #back (): void {
    if (!this.#down) return
    this.#down = false
    this.#log.info('fastify-comet: connected to Redis again')
  }
}
