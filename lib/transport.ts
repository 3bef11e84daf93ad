// What differs between an HTTP/1 and an HTTP/2 response, in one place.
import { constants } from 'node:http2'
import type { ServerResponse } from 'node:http'

// On HTTP/2, Node's compatibility response has no `destroyed` of its own: its stream has.
type Http2Stream = { destroyed: boolean, close: (code: number) => void }
const streamOf = (raw: ServerResponse): Http2Stream | undefined => (raw as { stream?: Http2Stream }).stream

/** Whether the client has gone: the connection (HTTP/1) or the stream (HTTP/2) is destroyed. */
export function clientGone (raw: ServerResponse): boolean {
  return raw.destroyed === true || streamOf(raw)?.destroyed === true
}

/**
 * Drops the response without a proper end. On HTTP/2 the stream is reset (destroying it directly
 * left Node 20's session open for good, so server.close() never settled); on HTTP/1 the socket goes.
 */
export function abortResponse (raw: ServerResponse): void {
  const stream = streamOf(raw)
  if (stream !== undefined) stream.close(constants.NGHTTP2_CANCEL)
  else raw.destroy()
}
