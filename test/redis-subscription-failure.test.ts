// What the log says of a subscription that failed with the subscriber up (lib/redis/subscription-failure.ts):
// a refusal by Redis reads as one, a node that cannot take it now (a failover, a reconnection) does
// not. test/redis/outages.test.ts sees the refusal logged by a real server (an ACL without the channel).
import t from 'tap'
import { ReplyError } from 'ioredis'
import { subscriptionFailure } from '../lib/redis/subscription-failure.js'

const reply = (message: string): Error => new ReplyError(message) as Error

t.test('a reply that refuses the subscription says Redis refused it', async t => {
  for (const message of ['NOPERM User deaf has no permissions to access the \'comet:{chat}:live\' channel', 'ERR unknown command']) {
    t.match(subscriptionFailure(reply(message)), /^fastify-comet: Redis refused the subscription to a channel/, message)
  }
})

t.test('a cluster that is changing, or a connection that is not there, is not called a refusal', async t => {
  const errors = [
    reply('MOVED 3999 127.0.0.1:6381'), reply('ASK 3999 127.0.0.1:6381'), reply('TRYAGAIN Multiple keys request during rehashing of slot'),
    reply('CLUSTERDOWN The cluster is down'), reply('LOADING Redis is loading the dataset in memory'),
    new Error('Connection is closed.'), Object.assign(new Error('No sharded subscriber for slot: 3999'), { name: 'AbortError' })
  ]
  for (const err of errors) {
    const said = subscriptionFailure(err)
    t.notMatch(said, /refused/, err.message)
    t.match(said, /could not subscribe to a channel, its Redis node being unreachable or changing/, err.message)
  }
})
