// Logging a failure must never fail in turn: an error whose `message` or `stack` getter throws,
// or a revoked Proxy, would otherwise escape from the logger's serializer.
import type { FastifyBaseLogger } from 'fastify'
import { describeValue } from './errors.js'

/** Logs `err` at error level; falls back to a description of the value when it cannot be serialized. */
export function logFailure (log: FastifyBaseLogger, err: unknown, message: string): void {
  try {
    log.error({ err }, message)
  } catch {
    try {
      log.error({ err: { type: safeDescription(err), message: 'the error could not be serialized' } }, message)
    } catch {} // a logger that throws on plain data: nothing more can be said
  }
}

function safeDescription (value: unknown): string {
  try {
    return describeValue(value)
  } catch {
    return 'unknown' // a revoked Proxy throws even on typeof-adjacent inspection
  }
}
