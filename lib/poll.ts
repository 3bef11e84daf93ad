// Polling: the same route answers a short, complete response instead of a forever document when
// the client asks with `?transport=poll`. A hop that buffers each response whole (an antivirus
// scanner, an inspecting proxy) passes a complete response on at once, where it would hold a
// forever one back for ever. The poll ends soon after it has something to deliver, or after
// `pollTimeout` with nothing; the client polls again at once, resuming from its last id.
// A poll asked for with the header `Comet-Format: json` is answered with the same entries as a
// JSON array, for fetch(): no document, so no helper script and none of a document's headers,
// which would be most of a poll's bytes. A header, not a query parameter: a page of another site
// cannot send it (its <script>, <img> or frame sends none, and its fetch() may add one only after
// a CORS preflight that the application would have to allow), so it can never have JSON, only a
// document poll with a document's protection. The page's own scripts read JSON polls.
import type { FastifyRequest } from 'fastify'
import { wholeNumber } from './whole-number.js'

/**
 * How long a poll with something to deliver gathers what follows before it ends: what comes in
 * the same turn (a burst, a replay read at once) goes along. Longer only delays every message
 * (10 ms was 11.8 ms of median delay against socket.io's 3.7, BENCHMARKS.md).
 */
export const POLL_GATHER_MS = 1

export interface Poll {
  /** How long it may wait: the route's `pollTimeout`, or less when the client asks with `&wait=MS`. */
  wait: number
  /** The route's `pollTimeout`, which a poll announces for the client to watch the next ones. */
  timeout: number
  /** Answered as JSON (`Comet-Format: json`) rather than as a document. */
  json: boolean
}

/**
 * The poll this request asks for, or undefined when it asks for a stream. `wait=0`: the client
 * only checks that polls get through, and wants the answer at once, messages or not.
 */
export function pollOf (request: FastifyRequest, pollTimeout: number): Poll | undefined {
  const query = request.query as Record<string, unknown> | undefined
  if (query?.transport !== 'poll') return undefined
  return {
    wait: Math.min(pollTimeout, wholeNumber(query.wait) ?? pollTimeout),
    timeout: pollTimeout,
    json: request.headers['comet-format'] === 'json'
  }
}
