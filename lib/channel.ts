// Broadcast: one message, encoded once, delivered to every subscribed stream. With `history`, the
// channel keeps its last messages and gives them ids, so a reconnecting client gets exactly what
// it missed, then the live messages, each once and in order; or a reset when that cannot be done.
import { encodeMessage, encodeId, messageEntry } from './encode.js'
import { kCometFeed, type CometFeed, type CometFeedSource, type CometSubscriber, type FeedContext } from './feed.js'
import { History } from './history.js'
import type { LastEventId } from './last-event-id.js'
import { resolveChannelOptions } from './options.js'
import type { CometChannelOptions, CometChannel as PublicCometChannel } from '../types/index.js'

/** Whether a channel was closed, for the plugin's stats(); a symbol, so it stays off the public API. */
export const kChannelClosed = Symbol('fastify-comet.channel-closed')

/** Called once when a channel closes, so the plugin's registry of names lets go of it. */
export const kOnClose = Symbol('fastify-comet.channel-on-close')

/** Called with whether the plugin's registry of names must hold the channel (see review() below). */
export const kOnHeld = Symbol('fastify-comet.channel-on-held')

/** What a channel shares with the feeds of its subscribers. */
interface Hub {
  readonly maxQueue: number
  readonly feeds: Set<ChannelFeed>
  readonly history: History | undefined
  closed: boolean
  onClose: (() => void) | undefined
  /** Set for a named channel only: unnamed ones are the application's to keep. */
  onHeld: ((held: boolean) => void) | undefined
  held: boolean
  /** Pending while nobody is subscribed and messages are kept: when they will have aged out. */
  expiry: NodeJS.Timeout | undefined
}

/**
 * A fan-out source: `reply.comet(channel, callback)` subscribes a response until it ends, and
 * `publish()` sends a message to every subscriber.
 */
export class CometChannel<T = unknown> implements CometFeedSource, PublicCometChannel<T> {
  readonly #idOf: ((message: T) => unknown) | undefined
  readonly #hub: Hub

  constructor (options: CometChannelOptions<T> = {}) {
    const { maxQueue, id, history, historyTtl } = resolveChannelOptions(options)
    this.#idOf = id
    this.#hub = {
      maxQueue,
      feeds: new Set(),
      history: history === 0 ? undefined : new History(history, historyTtl),
      closed: false,
      onClose: undefined,
      onHeld: undefined,
      held: false,
      expiry: undefined
    }
  }

  /** How many streams are subscribed. */
  get size (): number {
    return this.#hub.feeds.size
  }

  get [kChannelClosed] (): boolean {
    return this.#hub.closed
  }

  [kOnClose] (listener: () => void): void {
    this.#hub.onClose = listener
  }

  [kOnHeld] (listener: (held: boolean) => void): void {
    this.#hub.onHeld = listener
  }

  /**
   * Sends `message` to every subscriber. Throws FST_COMET_UNSERIALIZABLE_MESSAGE, delivering
   * nothing, when JSON cannot represent it, whether or not anyone is subscribed. With history,
   * resolves with the id the channel gave the message, once it is stored (at once, in process).
   */
  publish (message: T): Promise<string> | undefined {
    const encoded = encodeMessage(message)
    const hub = this.#hub
    const { history } = hub
    if (history === undefined) {
      const entry = messageEntry(encoded, encodeId(this.#idOf, message))
      if (!hub.closed) deliverEach(hub.feeds, entry)
      return undefined
    }
    const id = history.idOf(history.last + 1)
    const entry = messageEntry(encoded, encodeMessage(id))
    history.append(entry)
    deliverEach(hub.feeds, entry)
    if (hub.feeds.size === 0) review(hub) // a message to keep for those who come back
    return Promise.resolve(id)
  }

  /**
   * The id of the newest message, for a page rendered now to connect with: it then receives
   * everything published after the render. `EPOCH-0` before the first message (a replay from the
   * first); undefined without history, which gives no ids (connecting without one starts live).
   */
  position (): Promise<string | undefined> {
    const { history } = this.#hub
    return Promise.resolve(history?.idOf(history.last))
  }

  /** Ends every subscriber's stream cleanly; later subscribers end at once. */
  close (): void {
    const hub = this.#hub
    if (hub.closed) return
    hub.closed = true
    clearTimeout(hub.expiry)
    for (const feed of hub.feeds) feed.close()
    hub.feeds.clear()
    hub.onClose?.()
  }

  [kCometFeed] (context: FeedContext): CometFeed {
    return new ChannelFeed(this.#hub, context)
  }
}

// The registry of names holds a channel while it has subscribers or messages a client may still
// resume from; otherwise only the application's own references keep it, and a name nobody keeps
// starts afresh. Looked at when the first subscriber comes, the last goes, a message is kept for
// nobody, and when the messages kept have aged out.
function review (hub: Hub): void {
  const onHeld = hub.onHeld
  if (onHeld === undefined || hub.closed) return
  let held = hub.feeds.size > 0
  if (!held && hub.history !== undefined) {
    const keptFor = hub.history.keptFor()
    held = keptFor > 0
    // One timer per idle channel: a message published meanwhile is found when it fires.
    if (held && keptFor !== Infinity && hub.expiry === undefined) hub.expiry = setTimeout(expired, keptFor, hub).unref()
  }
  if (held !== hub.held) {
    hub.held = held
    onHeld(held)
  }
}

function expired (hub: Hub): void {
  hub.expiry = undefined
  review(hub)
}

// What goes wrong while one stream takes a message (a bug, an engine limit) ends that stream: it
// must not reach the publisher, nor keep the message from the subscribers after it.
function deliverEach (feeds: Set<ChannelFeed>, entry: string): void {
  for (const feed of feeds) {
    try {
      feed.live(entry)
    } catch (err) {
      feed.fail(err)
    }
  }
}

/** One stream's subscription: replays what the client missed, then delivers live. */
class ChannelFeed implements CometFeed {
  readonly #hub: Hub
  readonly #lastEventId: LastEventId
  readonly #since: number | undefined
  #stream: CometSubscriber | undefined
  /** While replaying, the sequence number of the next message to send from the history. */
  #replayNext = 0

  constructor (hub: Hub, { lastEventId, since }: FeedContext) {
    this.#hub = hub
    this.#lastEventId = lastEventId
    this.#since = since
  }

  get maxQueue (): number {
    return this.#hub.maxQueue
  }

  start (stream: CometSubscriber): void {
    const hub = this.#hub
    if (hub.closed) return stream.end('done')
    this.#stream = stream
    // Subscribed before reading the history: nothing published from now on can fall in between.
    hub.feeds.add(this)
    if (hub.feeds.size === 1) review(hub)
    const history = hub.history
    if (history === undefined) return
    const resume = history.resume(this.#lastEventId, this.#since)
    if ('reset' in resume) {
      // Tells the client that what it missed is gone, and where it stands now.
      stream.control('reset', { lastEventId: this.#lastEventId ?? undefined, id: history.idOf(history.last) })
    } else if (resume.replayFrom <= history.last) {
      this.#replayNext = resume.replayFrom
      this.#replay(stream, history).then(undefined, err => stream.fail(err))
    }
  }

  // Paced like any pulled source: a replay longer than the socket takes waits for it to drain.
  async #replay (stream: CometSubscriber, history: History): Promise<void> {
    while (this.#stream !== undefined && this.#replayNext <= history.last) {
      // Published faster than this subscriber takes them: what it needs was overwritten.
      if (this.#replayNext < history.oldest) return stream.end('overflow')
      stream.deliver(history.entry(this.#replayNext++))
      if (!stream.ready) await stream.whenReady()
    }
    this.#replayNext = 0
  }

  /** A message published now: delivered unless the replay will reach it from the history. */
  live (entry: string): void {
    if (this.#replayNext === 0) this.#stream?.deliver(entry)
  }

  fail (err: unknown): void {
    this.#stream?.fail(err)
  }

  close (): void {
    this.#stream?.end('done')
  }

  stop (): void {
    const hub = this.#hub
    if (hub.feeds.delete(this) && hub.feeds.size === 0) review(hub)
    this.#stream = undefined
  }
}
