// What the log says of a subscription that failed with the subscriber up. Redis refusing it (an
// ACL without the channel) is a setting to fix; a node that cannot take it now (no connection to
// it yet, a failover under way, a slot on the move) is not, and must not read like one.

/** Replies of a cluster that is changing, not refusals. */
const CHANGING = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN|LOADING|MASTERDOWN)\b/

export function subscriptionFailure (err: Error): string {
  const refused = err.name === 'ReplyError' && !CHANGING.test(err.message)
  return refused
    ? 'fastify-comet: Redis refused the subscription to a channel: this instance hears its messages only when it reads the log'
    : 'fastify-comet: could not subscribe to a channel, its Redis node being unreachable or changing (a failover, a reconnection, a slot on the move): this instance hears its messages only when it reads the log'
}
