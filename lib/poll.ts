// Polling: the same route answers a short, complete document instead of a forever one when the
// client asks with `?transport=poll`. A hop that buffers each response whole (an antivirus
// scanner, an inspecting proxy) passes a complete document on at once, where it would hold a
// forever one back for ever. The poll ends soon after it has something to deliver, or after
// `pollTimeout` with nothing; the client polls again at once, resuming from its last id.
import type { FastifyRequest } from 'fastify'

/** How long a poll with something to deliver gathers what follows before it ends. */
export const POLL_GATHER_MS = 10

/** Whether the request asks for a poll rather than a stream. */
export function pollRequested (request: FastifyRequest): boolean {
  return (request.query as Record<string, unknown> | undefined)?.transport === 'poll'
}
