// Option validation: plugin options once at register, per-call options at each reply.comet().
import { FST_COMET_INVALID_OPTION } from './errors.js'
import { assertCallback } from './encode.js'
import type { CometBroker } from './broker.js'
import type { FastifyCometOptions, CometReplyOptions, CometChannelOptions, CometPushOptions } from '../types/index.js'

/** What one stream needs to know, with every default filled in. */
export interface StreamSettings {
  callback: string
  padding: number
  heartbeat: number
  maxBytes: number
  maxQueueBytes: number
  maxDuration: number
  pollTimeout: number
  id: ((message: unknown) => unknown) | undefined
}

export type StreamDefaults = Omit<StreamSettings, 'callback' | 'id'>

export interface PluginSettings {
  defaults: StreamDefaults
  clientPath: string | undefined
  maxStreams: number
  retryAfter: number
  broker: CometBroker | undefined
}

const DEFAULTS: StreamDefaults = {
  padding: 5120, // Play's 5 KiB: enough for every browser to start rendering the first chunk
  heartbeat: 20000, // under the 30-60 s idle timeouts common in proxies and load balancers
  // Browsers read a comet document as fast as it arrives, whatever the page's pace, and Firefox
  // holds on to what it read: ending a document bounds both. Each new document costs a reconnect
  // (50-100 ms in a browser), so rarely: 8 MiB (BENCHMARKS.md, "Rotation from data").
  maxBytes: 8388608,
  // What a stream may hold for a client whose socket is full: no more than one whole document
  // (the maxBytes default), so a stuck client costs what a rotation would have let it read.
  maxQueueBytes: 8388608,
  maxDuration: 0,
  // Under the 30-60 s idle timeouts of proxies and load balancers, like the heartbeat.
  pollTimeout: 25000
}

// Padding beyond 64 KiB buys nothing in any browser and only costs every connection.
const MAX_PADDING = 65536
// A stream in a burst may hold 4 x maxQueueBytes (stream.ts): this keeps that, plus one message,
// far below V8's longest string (about 512 Mi characters).
const MAX_QUEUE_BYTES = 67108864
// setTimeout's own limit (about 24.8 days).
export const MAX_DELAY = 2147483647
// Long enough for a client to wait, short enough that a later retry still means something.
const DEFAULT_RETRY_AFTER = 5
const MAX_RETRY_AFTER = 86400

const STREAM_OPTIONS = ['padding', 'heartbeat', 'maxBytes', 'maxQueueBytes', 'maxDuration', 'pollTimeout']
const PLUGIN_OPTIONS = new Set([...STREAM_OPTIONS, 'helmet', 'clientPath', 'maxStreams', 'retryAfter', 'broker'])
const REPLY_OPTIONS = new Set([...STREAM_OPTIONS, 'callback', 'id'])

/** Validates the options given to register(); throws FST_COMET_INVALID_OPTION. */
export function resolvePluginOptions (options: FastifyCometOptions): PluginSettings {
  assertObject(options, 'options')
  assertKnownKeys(options, PLUGIN_OPTIONS)
  if (options.helmet !== undefined && options.helmet !== false) assertObject(options.helmet, 'helmet')
  const { clientPath } = options
  if (clientPath !== undefined && (typeof clientPath !== 'string' || !/^\/[\w\-./]*$/.test(clientPath))) {
    throw new FST_COMET_INVALID_OPTION('clientPath', 'expected a URL path such as /comet/client.js')
  }
  return {
    defaults: readStreamOptions(options, DEFAULTS),
    clientPath,
    maxStreams: options.maxStreams === Infinity ? Infinity : readInteger(options, 'maxStreams', Infinity, Number.MAX_SAFE_INTEGER, 'streams, or Infinity', 1),
    retryAfter: readInteger(options, 'retryAfter', DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, 'seconds'),
    broker: readBroker(options.broker)
  }
}

/** Validates the second argument of reply.comet(); throws before anything is written. */
export function resolveReplyOptions<T> (defaults: StreamDefaults, arg: string | CometReplyOptions<T>): StreamSettings {
  if (typeof arg === 'string') return { callback: assertCallback(arg), id: undefined, ...defaults }
  assertObject(arg, 'options')
  assertKnownKeys(arg, REPLY_OPTIONS)
  return { callback: assertCallback(arg.callback), id: readIdOption(arg), ...readStreamOptions(arg, defaults) }
}

const PUSH_OPTIONS = new Set(['maxQueue', 'id'])
const CHANNEL_OPTIONS = new Set(['maxQueue', 'id', 'history', 'historyTtl', 'name'])
// A history is kept in memory per channel: a bound keeps a typo from reserving gigabytes.
const MAX_HISTORY = 1_000_000

/** Options of a push source; throws FST_COMET_INVALID_OPTION. */
export function resolvePushOptions<T> (options: CometPushOptions<T>): { maxQueue: number, id: ((message: T) => unknown) | undefined } {
  assertObject(options, 'options')
  assertKnownKeys(options, PUSH_OPTIONS)
  return { maxQueue: readMaxQueue(options), id: readIdOption(options) }
}

/** Options of a channel (`name` is the factory's business); throws FST_COMET_INVALID_OPTION. */
export function resolveChannelOptions<T> (options: CometChannelOptions<T>): { maxQueue: number, id: ((message: T) => unknown) | undefined, history: number, historyTtl: number } {
  assertObject(options, 'options')
  assertKnownKeys(options, CHANNEL_OPTIONS)
  const history = readInteger(options, 'history', 0, MAX_HISTORY, 'messages (0 keeps none)')
  const historyTtl = readInteger(options, 'historyTtl', 0, MAX_DELAY, 'milliseconds (0: no age limit)')
  if (history === 0 && historyTtl > 0) {
    throw new FST_COMET_INVALID_OPTION('historyTtl', 'a channel without history keeps no message to age')
  }
  const id = readIdOption<T>(options)
  if (history > 0 && id !== undefined) {
    throw new FST_COMET_INVALID_OPTION('id', 'a channel with history gives its messages their ids itself')
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name === '' || options.name.length > 200)) {
    throw new FST_COMET_INVALID_OPTION('name', 'expected a non-empty string of at most 200 characters')
  }
  return { maxQueue: readMaxQueue(options), id, history, historyTtl }
}

function readMaxQueue (options: Record<string, unknown>): number {
  return readInteger(options, 'maxQueue', 1024, Number.MAX_SAFE_INTEGER, 'messages', 1)
}

/** The `id` option: a function from message to id, or undefined. */
function readIdOption<T> (options: { id?: unknown }): ((message: T) => unknown) | undefined {
  if (options.id !== undefined && typeof options.id !== 'function') {
    throw new FST_COMET_INVALID_OPTION('id', 'expected a function (message) => string | undefined')
  }
  return options.id as ((message: T) => unknown) | undefined
}

function readStreamOptions (options: Record<string, unknown>, defaults: StreamDefaults): StreamDefaults {
  const settings = {
    padding: readInteger(options, 'padding', defaults.padding, MAX_PADDING, 'bytes'),
    heartbeat: readInteger(options, 'heartbeat', defaults.heartbeat, MAX_DELAY, 'milliseconds (0 turns it off)'),
    maxBytes: options.maxBytes === Infinity ? Infinity : readInteger(options, 'maxBytes', defaults.maxBytes, Number.MAX_SAFE_INTEGER, 'bytes, or Infinity', 1),
    maxQueueBytes: readInteger(options, 'maxQueueBytes', defaults.maxQueueBytes, MAX_QUEUE_BYTES, 'bytes', 1),
    maxDuration: readInteger(options, 'maxDuration', defaults.maxDuration, MAX_DELAY, 'milliseconds (0 turns it off)'),
    pollTimeout: readInteger(options, 'pollTimeout', defaults.pollTimeout, MAX_DELAY, 'milliseconds', 1)
  }
  // maxBytes counts the whole document, padding included: at or below the padding, every stream
  // would end after its first message.
  if (settings.maxBytes <= settings.padding) {
    throw new FST_COMET_INVALID_OPTION('maxBytes', `must be larger than padding (${settings.padding} bytes)`)
  }
  return settings
}

function readBroker (broker: unknown): CometBroker | undefined {
  if (broker === undefined) return undefined
  if (broker === null || typeof broker !== 'object' || typeof (broker as Partial<CometBroker>).connect !== 'function') {
    throw new FST_COMET_INVALID_OPTION('broker', 'expected a broker such as cometRedis() from fastify-comet/redis')
  }
  return broker as CometBroker
}

function assertObject (value: unknown, name: string): asserts value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new FST_COMET_INVALID_OPTION(name, 'expected an object')
  }
}

// A misspelt option would otherwise be ignored without a word.
function assertKnownKeys (options: object, known: Set<string>): void {
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new FST_COMET_INVALID_OPTION(key, `unknown option, expected one of ${[...known].join(', ')}`)
  }
}

function readInteger (options: Record<string, unknown>, key: string, fallback: number, max: number, unit: string, min = 0): number {
  const value = options[key]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new FST_COMET_INVALID_OPTION(key, `expected a whole number of ${unit} from ${min} to ${max}`)
  }
  return value
}
