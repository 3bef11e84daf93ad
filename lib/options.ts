// Option validation: plugin options once at register, per-call options at each reply.comet().
import { FST_COMET_INVALID_OPTION } from './errors.js'
import { assertCallback } from './encode.js'
import type { FastifyCometOptions, CometReplyOptions } from '../types/index.js'

/** What one stream needs to know, with every default filled in. */
export interface StreamSettings {
  callback: string
  padding: number
}

export type StreamDefaults = Omit<StreamSettings, 'callback'>

const DEFAULTS: StreamDefaults = {
  padding: 5120 // Play's 5 KiB: enough for every browser to start rendering the first chunk
}

const PLUGIN_OPTIONS = new Set<string>(['padding', 'helmet'])
const REPLY_OPTIONS = new Set<string>(['callback', 'padding'])

/** Validates the options given to register(); throws FST_COMET_INVALID_OPTION. */
export function resolvePluginOptions (options: FastifyCometOptions): StreamDefaults {
  assertObject(options, 'options')
  assertKnownKeys(options, PLUGIN_OPTIONS)
  if (options.helmet !== undefined && options.helmet !== false) assertObject(options.helmet, 'helmet')
  return {
    padding: readByteCount(options, 'padding', DEFAULTS.padding)
  }
}

/** Validates the second argument of reply.comet(); throws before anything is written. */
export function resolveReplyOptions (defaults: StreamDefaults, arg: string | CometReplyOptions): StreamSettings {
  if (typeof arg === 'string') return { callback: assertCallback(arg), padding: defaults.padding }
  assertObject(arg, 'options')
  assertKnownKeys(arg, REPLY_OPTIONS)
  return {
    callback: assertCallback(arg.callback),
    padding: readByteCount(arg, 'padding', defaults.padding)
  }
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

function readByteCount (options: Record<string, unknown>, key: string, fallback: number): number {
  const value = options[key]
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > MAX_PADDING) {
    throw new FST_COMET_INVALID_OPTION(key, `expected a whole number of bytes from 0 to ${MAX_PADDING}`)
  }
  return value
}

// Padding beyond 64 KiB buys nothing in any browser and only costs every connection.
const MAX_PADDING = 65536
