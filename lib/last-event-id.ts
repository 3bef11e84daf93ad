// Where a reconnecting client says what it saw last: `?lastEventId=` (the comet client's way, since
// an iframe cannot set headers) or a `Last-Event-ID` header (the SSE convention, for proxies or
// other clients). A single-source stream gets one id; a multiplexed one a cursor, the JSON text of
// an object with one id per key, e.g. {"chat":"3fa1c2b4d5e6-12","alerts":"9b0e1d2c3f4a-3"}.
//
// What the feeds are told, per source: `undefined` when the client named no position (it starts
// live), the id when it is one we could have given (printable ASCII, bounded), and `null` when the
// client named something that is none of ours (any other length or character, a repeated header, a
// cursor that does not parse): a channel with history answers that with a reset, never a silent start.
//
// A client with no position may also say since when it needs messages: `?since=MS`, "replay what
// was published in the last MS milliseconds, then live" (the shipped client, falling back from a
// stream that delivered nothing, not even its `open`, asks its first poll for what was published
// since it opened that stream). Relative milliseconds measured on the server's clock, so the
// client's clock never matters. It counts only where the client names no position: an id wins.
import type { FastifyRequest } from 'fastify'
import type { FeedContext } from './feed.js'
import { queryMilliseconds } from './whole-number.js'

/** What the client said about its position: an id, nothing (undefined), or something not ours (null). */
export type LastEventId = string | undefined | null

// Printable ASCII only and bounded: the value goes straight to application code that may log it
// or use it in a query.
const VALID_ID = /^[\x20-\x7e]{1,256}$/
/** Longest cursor of a multiplexed stream: 64 keys of 64 characters with ids of about 40 fit. */
export const MAX_CURSOR = 8192
const VALID_CURSOR = /^[\x20-\x7e]+$/

/**
 * The raw value the request carries: the query parameter, else the header; '' and absence are no
 * position. A repeated parameter or header names no message: without the other, it is not ours.
 */
function rawLastEventId (request: FastifyRequest): LastEventId {
  const query = (request.query as Record<string, unknown> | undefined)?.lastEventId
  if (typeof query === 'string' && query !== '') return query
  const header = singleHeader(request.raw.rawHeaders, 'last-event-id')
  // A repeated query parameter arrives as an array.
  if (header === undefined && query !== undefined && typeof query !== 'string') return null
  return header === '' ? undefined : header
}

/** The id of a single-source stream. */
function singleId (raw: LastEventId): LastEventId {
  if (raw === undefined || raw === null) return raw
  return VALID_ID.test(raw) ? raw : null
}

/**
 * The id of each key of a multiplexed stream: a key the cursor leaves out starts live, keys the
 * stream does not serve are ignored, and a cursor that is not one of ours is not ours for every key.
 */
function keyedIds (raw: LastEventId): (key: string) => LastEventId {
  if (raw === undefined) return noPosition
  const ids = raw === null ? null : parseCursor(raw)
  if (ids === null) return notOurs
  return key => Object.hasOwn(ids, key) ? singleId(ids[key]) : undefined
}

/** What the feed of a single-source stream is told of the client's position. */
export function singleContext (request: FastifyRequest): FeedContext {
  return feedContext(singleId(rawLastEventId(request)), queryMilliseconds(request, 'since'))
}

/** What the feed of each key of a multiplexed stream is told. */
export function keyedContexts (request: FastifyRequest): (key: string) => FeedContext {
  const idOf = keyedIds(rawLastEventId(request))
  const since = queryMilliseconds(request, 'since')
  return key => feedContext(idOf(key), since)
}

// `since` only where the client names no position.
function feedContext (lastEventId: LastEventId, since: number | undefined): FeedContext {
  return lastEventId === undefined && since !== undefined ? { lastEventId, since } : { lastEventId }
}

function parseCursor (raw: string): Record<string, string> | null {
  if (raw.length > MAX_CURSOR || !VALID_CURSOR.test(raw)) return null
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return null
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null
  for (const id of Object.values(value)) if (typeof id !== 'string') return null
  return value as Record<string, string>
}

function noPosition (): undefined {
  return undefined
}

function notOurs (): null {
  return null
}

// Node joins repeated headers into "7, 9", which names no message: a repeated header is not ours.
function singleHeader (rawHeaders: string[], name: string): LastEventId {
  let value: string | undefined
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].length !== name.length || rawHeaders[i].toLowerCase() !== name) continue
    if (value !== undefined) return null
    value = rawHeaders[i + 1]
  }
  return value
}
