// Where a reconnecting client says what it saw last: `?lastEventId=` (the comet client's way, since
// an iframe cannot set headers) or a `Last-Event-ID` header (the SSE convention, for proxies or
// other clients).
import type { FastifyRequest } from 'fastify'

// Printable ASCII only and bounded: the value goes straight to application code that may log it
// or use it in a query.
const VALID_ID = /^[\x20-\x7e]{1,256}$/

export function lastEventIdOf (request: FastifyRequest): string | undefined {
  const query = (request.query as Record<string, unknown> | undefined)?.lastEventId
  // A repeated query parameter arrives as an array: not an id, so the header is read instead.
  const value = typeof query === 'string' ? query : singleHeader(request.raw.rawHeaders, 'last-event-id')
  return value !== undefined && VALID_ID.test(value) ? value : undefined
}

// Node joins repeated headers into "7, 9", which names no message: a repeated header counts as none.
function singleHeader (rawHeaders: string[], name: string): string | undefined {
  let value: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].length !== name.length || rawHeaders[i].toLowerCase() !== name) continue
    if (value !== undefined) return undefined
    value = rawHeaders[i + 1]
  }
  return value
}
