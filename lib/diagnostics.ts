// Stream lifecycle events on node:diagnostics_channel, for APM tools and tests, as undici and
// Fastify publish theirs. Callers check `hasSubscribers` first, so nobody listening costs nothing:
// not even the message object is built.
import diagnostics from 'node:diagnostics_channel'

/** Published with a CometStreamOpenMessage once a stream has taken its response over. */
export const streamOpenChannel = diagnostics.channel('fastify-comet:stream:open')
/** Published with a CometStreamEndMessage once per stream, whatever ended it. */
export const streamEndChannel = diagnostics.channel('fastify-comet:stream:end')
