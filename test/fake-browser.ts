// A fake window for the browser client's unit tests: the client (client/comet-client.js) runs in a
// VM context with a fake document, timers, performance.now, Date.now and Math.random, so every
// delay is known. No BroadcastChannel: each fake page has a connection of its own.
import vm from 'node:vm'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type FastifyCometClient from '../client/comet-client.js'

const CLIENT_SOURCE = readFileSync(join(__dirname, '..', 'client', 'comet-client.js'), 'utf8')

type Listener = (event: { type: string, [property: string]: unknown }) => void

class FakeTarget {
  listeners = new Map<string, Set<Listener>>()
  addEventListener (type: string, listener: Listener): void {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set())
    this.listeners.get(type)!.add(listener)
  }

  removeEventListener (type: string, listener: Listener): void {
    this.listeners.get(type)?.delete(listener)
  }

  dispatch (type: string, properties: Record<string, unknown> = {}): void {
    for (const listener of [...(this.listeners.get(type) ?? [])]) listener({ ...properties, type })
  }
}

class FakeFrame extends FakeTarget {
  hidden = false
  tabIndex = 0
  title = ''
  src = ''
  attributes: Record<string, string> = {}
  parentNode: FakeBody | null = null
  // A cross-origin frame's document is out of reach; tests give it one when they need it.
  contentDocument: { URL: string, currentScript: null } | null = null
  setAttribute (name: string, value: string): void { this.attributes[name] = value }
}

class FakeBody {
  childNodes: FakeFrame[] = []
  appendChild (frame: FakeFrame): void {
    frame.parentNode = this
    this.childNodes.push(frame)
  }

  removeChild (frame: FakeFrame): void {
    frame.parentNode = null
    this.childNodes = this.childNodes.filter(child => child !== frame)
  }
}

interface FakeWindow extends FakeTarget {
  FastifyComet: typeof FastifyCometClient
  [name: string]: unknown
}

/** One origin's BroadcastChannels, for fake tabs: posted messages wait until the test delivers them. */
export class FakeBus {
  /** Every message posted, in order. */
  readonly posted: Array<{ t: string, [field: string]: unknown }> = []
  /** Messages of these types are posted but never arrive (as a leader that does not answer). */
  readonly lost = new Set<string>()
  readonly #channels = new Set<{ owner: object, name: string, onmessage: ((event: { data: unknown }) => void) | null }>()
  readonly #queue: Array<() => void> = []

  /** The BroadcastChannel class of one tab. */
  channelClass (owner: object): unknown {
    const channels = this.#channels
    const queue = this.#queue
    const posted = this.posted
    const lost = this.lost
    return class FakeBroadcastChannel {
      onmessage: ((event: { data: unknown }) => void) | null = null
      readonly owner = owner
      constructor (readonly name: string) { channels.add(this) }
      postMessage (data: { t: string }): void {
        posted.push(structuredClone(data))
        if (lost.has(data.t)) return
        for (const other of channels) {
          if (other === this || other.name !== this.name) continue
          const copy = structuredClone(data)
          queue.push(() => { if (channels.has(other)) other.onmessage?.({ data: copy }) })
        }
      }

      close (): void { channels.delete(this) }
    }
  }

  /** A tab gone without a word (a crash): its channels hear and say nothing any more. */
  cut (owner: object): void {
    for (const channel of this.#channels) if (channel.owner === owner) this.#channels.delete(channel)
  }

  /** Delivers every message posted, and those posted meanwhile, running microtasks in between. */
  async deliver (): Promise<void> {
    await settle()
    while (this.#queue.length > 0) {
      this.#queue.shift()!()
      await settle()
    }
  }
}

/** Runs the microtasks queued so far (the shared client posts and runs a leader's events in one). */
export async function settle (): Promise<void> {
  await new Promise(resolve => setImmediate(resolve))
}

/** A request of the fake fetch(): the test answers it (a body, as the server's JSON text or a value) or fails it. */
export interface FakeFetch {
  url: string
  headers: Record<string, string>
  aborted: () => boolean
  answer: (body: unknown, status?: number, contentType?: string) => Promise<void>
  fail: () => Promise<void>
}

export function fakeBrowser (options: { readyState?: string, random?: number, module?: { exports: unknown }, bus?: FakeBus, fetch?: boolean } = {}) {
  const body = new FakeBody()
  const timers = new Map<number, { fn: () => void, delay: number }>()
  let nextTimer = 1
  const reported: unknown[] = []
  const state = { random: options.random ?? 0.5, now: 0 }
  const window = new FakeTarget() as FakeWindow
  Object.assign(window, {
    window,
    document: {
      readyState: options.readyState ?? 'complete',
      body,
      documentElement: body,
      createElement: (name: string) => {
        if (name !== 'iframe') throw new Error(`unexpected element ${name}`)
        return new FakeFrame()
      }
    },
    setTimeout: (fn: () => void, delay = 0) => {
      timers.set(nextTimer, { fn, delay })
      return nextTimer++
    },
    clearTimeout: (id: number) => { timers.delete(id) },
    reportError: (err: unknown) => { reported.push(err) },
    performance: { now: () => state.now },
    random: () => state.random,
    now: () => state.now,
    alreadyThere: () => {}
  })
  if (options.module !== undefined) window.module = options.module
  const fetches: FakeFetch[] = []
  if (options.fetch === true) {
    window.AbortController = AbortController
    window.fetch = (url: string, init: { signal: AbortSignal, headers: Record<string, string> }) => new Promise((resolve, reject) => {
      init.signal.addEventListener('abort', () => reject(new Error('aborted')))
      fetches.push({
        url,
        headers: { ...init.headers },
        aborted: () => init.signal.aborted,
        answer: async (body, status = 200, contentType = 'application/json') => {
          const text = typeof body === 'string' ? body : JSON.stringify(body)
          const headers = { get: (name: string) => name.toLowerCase() === 'content-type' ? contentType : null }
          resolve({ ok: status >= 200 && status < 300, status, headers, json: async () => JSON.parse(text) })
          await settle()
        },
        fail: async () => {
          reject(new TypeError('Failed to fetch'))
          await settle()
        }
      })
    })
  }
  if (options.bus !== undefined) {
    window.BroadcastChannel = options.bus.channelClass(window)
    window.URL = URL
    ;(window.document as Record<string, unknown>).baseURI = 'http://localhost/page'
  }
  vm.createContext(window)
  vm.runInContext('Math.random = () => random(); Date.now = () => now()', window)
  vm.runInContext(CLIENT_SOURCE, window, { filename: 'comet-client.js' })
  return {
    window,
    body,
    reported,
    state,
    timers,
    /** The fake fetch()'s requests, in order (with `fetch: true`). */
    fetches,
    /** The frames in the page. */
    frames: () => body.childNodes,
    /** The one frame in the page. */
    frame: () => {
      if (body.childNodes.length !== 1) throw new Error(`${body.childNodes.length} frames`)
      return body.childNodes[0]
    },
    /** Runs the one pending timer (the one with this delay, if given) and returns its delay. */
    runTimer: (only?: number) => {
      const due = [...timers].filter(([, timer]) => only === undefined || timer.delay === only)
      if (due.length !== 1) throw new Error(`${due.length} timers`)
      const [[id, { fn, delay }]] = due
      timers.delete(id)
      fn()
      return delay
    },
    /** The delays of the pending timers. */
    delays: () => [...timers.values()].map(timer => timer.delay),
    /** What the route's control entries do: parent.<callback>.cometControl(type, detail). */
    control: (type: string, detail: unknown, callback = 'cometMessage') => {
      (window[callback] as unknown as { cometControl: (type: string, detail: unknown) => void }).cometControl(type, detail)
    },
    /** What the route's scripts do: parent.<callback>(message, id), or (message, id, key) in a multiplexed stream. */
    deliver: (message: unknown, id?: string, callback = 'cometMessage', key?: string) => {
      (window[callback] as (message: unknown, id?: string, key?: string) => void)(message, id, key)
    }
  }
}

export function recorder () {
  const events: unknown[] = []
  return {
    events,
    onMessage: (message: unknown, id: string | undefined, key?: string) => { events.push(key === undefined ? ['message', message, id] : ['message', message, id, key]) },
    onOpen: () => { events.push('open') },
    onClose: (info: FastifyCometClient.CloseInfo) => { events.push(['close', info]) }
  }
}
