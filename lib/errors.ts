// Every error this plugin throws, made in one place with a stable FST_COMET_* code.
import createError from '@fastify/error'

/** What kind of value was rejected, for error messages that must not echo the value itself. */
export function describeValue (value: unknown): string {
  if (value === null) return 'null'
  return typeof value === 'object' ? Object.prototype.toString.call(value).slice(8, -1) : typeof value
}

// 400: the callback name usually comes from the query string, so a bad one is the client's fault.
// The message never repeats the rejected name, so it cannot be reflected back into a page.
export const FST_COMET_INVALID_CALLBACK = createError(
  'FST_COMET_INVALID_CALLBACK',
  'Invalid comet callback: expected a dotted JavaScript identifier path of at most %s characters',
  400
)

export const FST_COMET_INVALID_OPTION = createError(
  'FST_COMET_INVALID_OPTION',
  'Invalid comet option "%s": %s',
  500
)

export const FST_COMET_INVALID_SOURCE = createError(
  'FST_COMET_INVALID_SOURCE',
  'Invalid comet source: expected an iterable, an async iterable or a function returning one, got %s',
  500
)

// Thrown by publish() and push(); for a message from an iterable the stream has started, so the
// stream ends instead and the error is logged.
export const FST_COMET_UNSERIALIZABLE_MESSAGE = createError(
  'FST_COMET_UNSERIALIZABLE_MESSAGE',
  'Comet message of type %s cannot be sent as JSON: %s',
  500
)

export const FST_COMET_SOURCE_CONSUMED = createError(
  'FST_COMET_SOURCE_CONSUMED',
  'This comet push source already feeds another stream: create one push source per response',
  500
)

export const FST_COMET_INVALID_STATUS = createError(
  'FST_COMET_INVALID_STATUS',
  'A comet response needs a status that has a body, not %s',
  500
)

export const FST_COMET_REPLY_SENT = createError(
  'FST_COMET_REPLY_SENT',
  'reply.comet() needs a reply that was neither sent nor hijacked',
  500
)

// The `id` option returned something other than a string: thrown by publish() and push(), logged
// (ending the stream) for a message from an iterable.
export const FST_COMET_INVALID_MESSAGE_ID = createError(
  'FST_COMET_INVALID_MESSAGE_ID',
  'The comet id option must return a string or undefined, got %s',
  500
)

// 403: the browser says the comet URL was opened as a page (Sec-Fetch-Dest: document), not in a
// frame. Answered before anything streams: a comet document must only talk to the page that framed it.
export const FST_COMET_NOT_FRAMED = createError(
  'FST_COMET_NOT_FRAMED',
  'A comet stream must be loaded in a frame (an iframe), not opened as a page',
  403
)

// 503: the server is at its `maxStreams`; the client should come back later (Retry-After says when).
// Thrown before anything is written, so Fastify's error handler answers it.
export const FST_COMET_TOO_MANY_STREAMS = createError(
  'FST_COMET_TOO_MANY_STREAMS',
  'Too many comet streams open (maxStreams is %s): try again later',
  503
)

// publish() on a channel shared through a broker: Redis did not store the message (unreachable,
// or no answer within the broker's commandTimeout). The message may be published again.
export const FST_COMET_PUBLISH_FAILED = createError(
  'FST_COMET_PUBLISH_FAILED',
  'Could not publish to channel "%s": %s',
  503
)
