// Polling: the same route answers a short, complete document instead of a forever one when the
// client asks with `?transport=poll`. A hop that buffers each response whole (an antivirus
// scanner, an inspecting proxy) passes a complete document on at once, where it would hold a
// forever one back for ever. The poll ends soon after it has something to deliver, or after
// `pollTimeout` with nothing; the client polls again at once, resuming from its last id.
import type { FastifyRequest } from 'fastify'

/**
 * How long a poll with something to deliver gathers what follows before it ends: what comes in
 * the same turn (a burst, a replay read at once) goes along. Longer only delays every message
 * (10 ms was 11.8 ms of median delay against socket.io's 3.7, BENCHMARKS.md).
 */
export const POLL_GATHER_MS = 1

/**
 * How long this request's poll may wait, or undefined when it asks for a stream: the route's
 * `pollTimeout`, or less when the client asks with `&wait=MS` (`wait=0`: the client only checks
 * that polls get through, and wants the answer at once, messages or not).
 */
export function pollTimeoutOf (request: FastifyRequest, pollTimeout: number): number | undefined {
  const query = request.query as Record<string, unknown> | undefined
  if (query?.transport !== 'poll') return undefined
  const wait = query.wait
  return typeof wait === 'string' && /^\d{1,9}$/.test(wait) ? Math.min(pollTimeout, Number(wait)) : pollTimeout
}
