// Shared test tools: a server on a real socket, a raw HTTP client that sees every chunk, a log
// recorder, and a script evaluator that replays comet scripts the way a browser would.
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { existsSync } from 'node:fs'
import http, { type ServerResponse } from 'node:http'
import type { Test } from 'tap'
import { once } from 'node:events'
import type { Server } from 'node:net'
import vm from 'node:vm'
import fastifyComet from '../lib/index.js'
import type { CometChannel, FastifyCometOptions } from '../types/index.js'
import type { CometSubscriber, FeedEndReason } from '../lib/feed.js'

export interface LogLine { level: number, msg: string, err?: { message: string, code?: string, type?: string }, [key: string]: unknown }

/** A logger option for Fastify that records every line, at debug level and up, as parsed JSON. */
export function recordLogs (): { logs: LogLine[], logger: { level: string, stream: { write: (line: string) => void } } } {
  const logs: LogLine[] = []
  return { logs, logger: { level: 'debug', stream: { write: line => { logs.push(JSON.parse(line)) } } } }
}

/**
 * A Fastify app with the plugin and a logger that records every line (see `recordLogs`). It closes
 * when `t` ends; a test that closes it itself, to test the shutdown, may: a second close is harmless.
 */
export async function build (t: Test, options: FastifyCometOptions = {}, serverOptions: FastifyServerOptions = {}): Promise<{ app: FastifyInstance, logs: LogLine[] }> {
  const { logs, logger } = recordLogs()
  const app = Fastify({ logger, ...serverOptions })
  t.teardown(() => app.close()) // before register, so an app whose register failed is closed too
  await app.register(fastifyComet, options)
  return { app, logs }
}

/** Resolves with the first line in `logs` (already recorded or still to come) that matches. */
export function logged (logs: LogLine[], matches: (line: LogLine) => boolean): Promise<LogLine> {
  return new Promise(resolve => {
    const found = logs.find(matches)
    if (found !== undefined) return resolve(found)
    const push = logs.push
    logs.push = function (...lines: LogLine[]) {
      const count = push.apply(this, lines)
      const line = lines.find(matches)
      if (line !== undefined) {
        logs.push = push
        resolve(line)
      }
      return count
    }
  })
}

/** Listens on a free loopback port (HTTP/1 or cleartext HTTP/2); returns the server's origin. */
export async function listen (app: Pick<FastifyInstance, 'listen'> & { server: Server }): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no TCP address')
  return `http://127.0.0.1:${address.port}`
}

/** A GET over a fresh socket that keeps every body chunk as it arrives. */
export interface OpenStream {
  res: http.IncomingMessage
  req: http.ClientRequest
  chunks: string[]
  body: () => string
  /** Resolves once the body contains `text`, or rejects when the response ends first. */
  waitFor: (text: string) => Promise<void>
  /** Resolves when the response ended (the terminating chunk arrived); rejects on an aborted body. */
  ended: Promise<void>
}

export async function open (url: string, options: http.RequestOptions = {}): Promise<OpenStream> {
  const req = http.get(url, { agent: false, ...options })
  const [res] = await once(req, 'response') as [http.IncomingMessage]
  res.setEncoding('utf8')
  const chunks: string[] = []
  const waiters = new Set<(chunk: string) => void>()
  res.on('data', (chunk: string) => {
    chunks.push(chunk)
    for (const check of waiters) check(chunk)
  })
  const ended = new Promise<void>((resolve, reject) => {
    req.on('error', reject) // the connection died: the body did not end properly
    res.on('end', resolve)
    res.on('aborted', () => reject(new Error('response aborted')))
    res.on('error', reject)
  })
  ended.catch(() => {})
  const body = (): string => chunks.join('')
  const waitFor = (text: string): Promise<void> => new Promise((resolve, reject) => {
    // Each chunk is searched with the end of what came before it, not the whole body again:
    // long streams stay linear.
    let tail = body()
    const check = (chunk: string): void => {
      const window = tail + chunk
      if (window.includes(text)) {
        waiters.delete(check)
        resolve()
      } else {
        tail = window.slice(window.length - text.length + 1)
      }
    }
    waiters.add(check)
    check('')
    ended.then(() => { if (waiters.delete(check)) reject(new Error(`ended without ${text}`)) }, reject)
  })
  return { res, req, chunks, body, waitFor, ended }
}

const SCRIPT = /<script(?: nonce="([^"]*)")?>([\s\S]*?)<\/script>/g

/** What a comet document did when its scripts ran: callback calls, control messages, reported errors. */
export interface Replayed {
  calls: unknown[][]
  controls: Array<[type: string, detail: unknown]>
  errors: unknown[]
  /** Every call in order: `['message', value, id?]` or `['control', type, detail]`. */
  all: unknown[][]
}

// The control messages that only say the connection is alive (see lib/encode.ts).
const LIVENESS = new Set(['open', 'beat'])

/**
 * Runs every script in a comet document in a fresh VM context, as a browser would run them in a
 * frame, and records what they did. `callback` is the dotted path the helper calls; `callback`
 * may throw to test error reporting. `framed: false` runs it as a top-level page instead.
 * The liveness control messages (`open`, `beat`) are left out unless `liveness: true`.
 */
export function replayDocument (html: string, callback = 'parent.cometMessage', options: { framed?: boolean, receive?: (...args: unknown[]) => void, control?: boolean, liveness?: boolean } = {}): Replayed {
  const replayed: Replayed = { calls: [], controls: [], errors: [], all: [] }
  const context: Record<string, unknown> = {
    document: { currentScript: null },
    reportError: (err: unknown) => { replayed.errors.push(err) }
  }
  context.window = context
  const path = callback.split('.')
  let target = context
  for (const name of path.slice(0, -1)) target = (target[name] ??= {}) as Record<string, unknown>
  const receive = (...args: unknown[]): void => {
    replayed.calls.push(args)
    replayed.all.push(['message', ...args])
    options.receive?.(...args)
  }
  if (options.control !== false) {
    (receive as unknown as Record<string, unknown>).cometControl = (type: string, detail: unknown) => {
      if (options.liveness !== true && LIVENESS.has(type)) return
      replayed.controls.push([type, detail])
      replayed.all.push(['control', type, detail])
    }
  }
  target[path[path.length - 1]] = receive
  context.parent = options.framed === false ? context : (context.parent ?? {})
  vm.createContext(context)
  for (const [, , code] of html.matchAll(SCRIPT)) vm.runInContext(code, context)
  return replayed
}

/** The arguments of every callback call in a comet document; throws what the document reported. */
export function replay (html: string, callback = 'parent.cometMessage'): unknown[][] {
  const { calls, errors } = replayDocument(html, callback)
  if (errors.length > 0) throw errors[0]
  return calls
}

/**
 * Runs a comet document as a page with the shipped client would (its callback has a
 * `cometControl` method), and returns every call in order: messages as `['message', value, id?]`,
 * control messages as `['control', type, detail]`.
 */
export function replayWithControl (html: string, callback = 'parent.cometMessage'): unknown[][] {
  return replayDocument(html, callback).all
}

/** The messages (first arguments) of every call in a comet document. */
export function messages (html: string, callback?: string): unknown[] {
  return replay(html, callback).map(args => args[0])
}

/** Counts the message-carrying scripts in a body (the helper script excluded) without running them. */
export function countScripts (html: string): number {
  return html.split('__fastifyComet([').length - 1
}

/**
 * Calls `record` after every write to `raw` with what was written, what write() returned, and
 * whether the response was already waiting for 'drain' before this write.
 */
export function onWrite (raw: ServerResponse, record: (chunk: unknown, ok: boolean, wasBlocked: boolean) => void): void {
  const write = raw.write
  raw.write = function (this: ServerResponse, ...args: Parameters<typeof write>) {
    const wasBlocked = raw.writableNeedDrain
    const ok = write.apply(this, args)
    record(args[0], ok, wasBlocked)
    return ok
  } as typeof write
}

/** Counts the writes to `raw` from now on. */
export function countWrites (raw: ServerResponse): () => number {
  let writes = 0
  onWrite(raw, () => { writes++ })
  return () => writes
}

/** Resolves the first time a write to `raw` returns false, that is when backpressure starts. */
export function firstBlockedWrite (raw: ServerResponse): Promise<void> {
  return new Promise(resolve => onWrite(raw, (chunk, ok) => { if (!ok) resolve() }))
}

/** A promise with its resolve and reject functions, for the test to settle from outside. */
export interface Deferred<T = void> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (reason?: unknown) => void
}

export function deferred<T = void> (): Deferred<T> {
  let settle!: Omit<Deferred<T>, 'promise'>
  const promise = new Promise<T>((resolve, reject) => { settle = { resolve, reject } })
  return { promise, ...settle }
}

/** Resolves after `count` trips round the event loop: long enough for pending I/O callbacks to run. */
export async function turns (count: number): Promise<void> {
  for (let i = 0; i < count; i++) await new Promise(setImmediate)
}

/**
 * A source that yields 'first', then waits for `release()` before it yields 'second'. Anything
 * that held 'first' back (batching, a buffering proxy) would keep the client from ever seeing
 * it, so a test waiting for it times out: the deadlock is the failure.
 */
export function loneMessageSource (): { source: () => AsyncGenerator<string>, release: () => void } {
  const released = deferred()
  async function * source (): AsyncGenerator<string> {
    yield 'first'
    await released.promise
    yield 'second'
  }
  return { source, release: released.resolve }
}

/** The document without its helper script (the same in every document), for exact comparisons. */
export function withoutHelper (html: string): string {
  return html.replace(/<script(?: nonce="[^"]*")?>\(function\(w\)[\s\S]*?<\/script>/, '')
}

/** Whether the environment says this is CI (CI set to anything but empty, 0 or false). */
export function onCI (): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

/**
 * True when an optional component (nginx, redis-server) is missing at `path`: the file is then
 * skipped with one line, `reason` (how to get it), or failed on CI, where every component must be
 * there, and it must define no tests.
 */
export function missing (t: Test, path: string, reason: string): boolean {
  if (existsSync(path)) return false
  if (onCI()) t.fail(`${reason}; on CI they must run`)
  else t.plan(0, reason)
  return true
}

/** A subscriber that records what it is given; `throws` makes its deliver() fail. */
export function recordingSubscriber (throws = false): CometSubscriber & { entries: string[], failures: unknown[], ends: FeedEndReason[] } {
  return {
    entries: [],
    failures: [],
    ends: [],
    ready: true,
    whenReady: async () => {},
    deliver (entry) {
      if (throws) throw new RangeError('Invalid string length')
      this.entries.push(entry)
    },
    control () {},
    end (reason) { this.ends.push(reason) },
    fail (err) { this.failures.push(err) }
  }
}

/** Two clients of one channel, on `/comet/fast` and `/comet/slow`; the slow one has stopped reading. */
export async function fastAndSlowClients<T> (t: Test): Promise<{
  logs: LogLine[]
  channel: CometChannel<T>
  raws: Map<string, ServerResponse>
  ids: Map<string, string>
  done: Map<string, Promise<void>>
  fast: OpenStream
  slow: OpenStream
}> {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const channel = app.comet.channel<T>()
  const raws = new Map<string, ServerResponse>()
  const ids = new Map<string, string>()
  const done = new Map<string, Promise<void>>()
  app.get('/comet/:who', (request, reply) => {
    const { who } = request.params as { who: string }
    raws.set(who, reply.raw)
    ids.set(who, request.id)
    const streaming = reply.comet(channel, 'cb')
    done.set(who, streaming)
    return streaming
  })
  const url = await listen(app)
  const fast = await open(`${url}/comet/fast`)
  const slow = await open(`${url}/comet/slow`)
  slow.res.pause()
  return { logs, channel, raws, ids, done, fast, slow }
}
