// The status line and headers of a comet response, settled and checked before the reply is
// hijacked, so that a bad header or status is still answered by Fastify's error handler.
import type { FastifyReply } from 'fastify'
import { ServerResponse, validateHeaderName, validateHeaderValue, type IncomingMessage } from 'node:http'
import { FST_COMET_INVALID_STATUS } from './errors.js'

const CONTENT_TYPE = 'text/html; charset=utf-8'
// Our defaults, which the application's headers override.
const DEFAULTS = {
  'cache-control': 'no-cache, no-store, no-transform, must-revalidate, max-age=0',
  'x-accel-buffering': 'no' // nginx: pass every chunk on at once
}
// A JSON poll is complete when it leaves, and read by fetch() with `cache: 'no-store'`.
const JSON_CONTENT_TYPE = 'application/json'
const JSON_DEFAULTS = { 'cache-control': 'no-store' }

// What a JSON poll leaves out: headers that guard a document (what it may load, run or be framed
// by), or guard a response from other sites' pages, which never get a JSON poll (poll.ts: they
// cannot send its header), and HSTS, which every page and comet document renews. Set by helmet
// on every response, they were most of a poll's bytes (BENCHMARKS.md).
const DOCUMENT_HEADERS = new Set([
  'content-security-policy', 'content-security-policy-report-only', 'cross-origin-embedder-policy',
  'cross-origin-opener-policy', 'cross-origin-resource-policy', 'origin-agent-cluster', 'permissions-policy',
  'referrer-policy', 'strict-transport-security', 'x-content-type-options', 'x-dns-prefetch-control',
  'x-download-options', 'x-frame-options', 'x-permitted-cross-domain-policies', 'x-xss-protection'
])

// The body framing is the transport's: chunked on HTTP/1.1, frames on HTTP/2. An application's
// length or transfer coding would leave the document unframed.
const FRAMING = new Set(['content-length', 'transfer-encoding'])
// Connection-specific headers are forbidden on HTTP/2 (RFC 9113, 8.2.2): Node throws on them.
const HTTP2_FORBIDDEN = new Set([...FRAMING, 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'http2-settings', 'te'])

export interface ResponseHead {
  status: number
  /** Name, value, name, value…: Node keeps a flat list once, in the rendered head only. */
  headers: string[]
}

/**
 * The head of a comet document, or of a JSON poll (`json`). Throws FST_COMET_INVALID_STATUS, or
 * Node's own error for a malformed header, before anything is sent.
 */
export function responseHead (reply: FastifyReply, json = false): ResponseHead {
  const status = reply.statusCode
  // These statuses have no body: the document would silently vanish while the source ran.
  if (status < 200 || status === 204 || status === 205 || status === 304) throw new FST_COMET_INVALID_STATUS(status)
  const dropped = reply.request.raw.httpVersionMajor >= 2 ? HTTP2_FORBIDDEN : FRAMING
  // Our defaults, then whatever the application set (CORS, cookies, its own caching policy),
  // then what the protocol cannot do without.
  const merged: Record<string, unknown> = Object.assign({}, json ? JSON_DEFAULTS : DEFAULTS, reply.getHeaders(),
    { 'content-type': json ? JSON_CONTENT_TYPE : CONTENT_TYPE })
  const headers: string[] = []
  for (const [name, value] of Object.entries(merged)) {
    const lower = name.toLowerCase()
    if (value === undefined || dropped.has(lower) || (json && DOCUMENT_HEADERS.has(lower))) continue
    validateHeaderName(name)
    for (const item of Array.isArray(value) ? value : [value]) {
      const text = String(item)
      validateHeaderValue(name, text)
      headers.push(name, text)
    }
  }
  return { status, headers }
}

/** Sends the head, with the headers kept once: in the rendered block only, until releaseSentHead(). */
export function writeResponseHead (raw: ServerResponse, head: ResponseHead): void {
  const { status, headers } = head
  if (raw.getHeaderNames().length === 0 || forgetHeaderMap(raw)) {
    raw.writeHead(status, headers)
  } else {
    // Set straight on `raw` (helmet does): they are in `headers` already, so they are replaced.
    // (writeHead's own merge of a flat list keeps only the last of repeated names.)
    for (const name of raw.getHeaderNames()) raw.removeHeader(name)
    for (let i = 0; i < headers.length; i += 2) raw.appendHeader(headers[i], headers[i + 1])
    raw.writeHead(status)
  }
}

// Node's own ServerResponse, whose internals below are known; a subclass (light-my-request's
// inject) may read its headers back, and is left alone.
function ownResponse (raw: ServerResponse): boolean {
  return Object.getPrototypeOf(raw) === ServerResponse.prototype
}

// Node keeps a response's headers twice for its whole life: in a map (for getHeader()) and in
// the rendered head. With helmet's headers the map alone is about 2 KB per idle stream (see
// BENCHMARKS.md). There is no public way to drop it, so the map, kept under the `kOutHeaders`
// symbol, is emptied before writeHead() (which then renders the flat list directly); left alone
// by any Node version that renamed the symbol.
const kOutHeaders = Object.getOwnPropertySymbols(new ServerResponse({ method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1 } as IncomingMessage))
  .find(symbol => symbol.description === 'kOutHeaders')

function forgetHeaderMap (raw: ServerResponse): boolean {
  const forgettable = kOutHeaders !== undefined && ownResponse(raw)
  if (forgettable) (raw as unknown as Record<symbol, unknown>)[kOutHeaders] = null
  return forgettable
}

// Stands for every released head: a string, as Node expects, and truthy, which is all it asks of it.
const SENT_HEAD = 'HTTP/1.1 (sent)\r\n\r\n'

/**
 * Lets go of the rendered head once it went out with the first chunk. Node keeps it (`_header`)
 * for the life of the response, but after sending reads it only for its truthiness (headersSent,
 * and the checks that refuse late headers): about 1 KB per idle stream with helmet's headers
 * (see BENCHMARKS.md). Left alone unless Node says it is sent (`_headerSent`).
 */
export function releaseSentHead (raw: ServerResponse): void {
  const response = raw as unknown as { _header: unknown, _headerSent: unknown }
  if (ownResponse(raw) && response._headerSent === true && typeof response._header === 'string') response._header = SENT_HEAD
}
