// An unexpected error while one stream takes a message (a bug, a broken socket, an engine limit)
// ends that stream, logged, and nothing else: publish() and push() do not throw it, the other
// subscribers still get the message, and a broker's message handler never sees it
// (test/redis/delivery-errors.test.ts).
import t from 'tap'
import type { ServerResponse } from 'node:http'
import { CometChannel } from '../lib/channel.js'
import { CometPush } from '../lib/push.js'
import { kCometFeed } from '../lib/feed.js'
import { build, listen, open, messages, recordingSubscriber as subscriber } from './helpers.js'

for (const history of [0, 10]) {
  t.test(`channel (history ${history}): a subscriber that throws is failed, the others get the message`, async t => {
    const channel = new CometChannel<string>({ history })
    const before = subscriber()
    const broken = subscriber(true)
    const after = subscriber()
    for (const s of [before, broken, after]) channel[kCometFeed]({ lastEventId: undefined }).start(s)
    let published: unknown
    t.doesNotThrow(() => { published = channel.publish('hello') }, 'publish() does not throw')
    if (history > 0) t.match(await published, /^[0-9a-f]{12}-1$/, 'and resolves with the id')
    t.equal(before.entries.length, 1, 'the subscriber before it got the message')
    t.equal(after.entries.length, 1, 'the subscriber after it got the message')
    t.match(broken.failures, [{ name: 'RangeError' }], 'the broken one was failed with its error')
  })
}

t.test('push source: a subscriber that throws is failed, push() returns instead of throwing', async t => {
  const out = new CometPush<string>()
  const broken = subscriber(true)
  out[kCometFeed]().start(broken)
  let accepted: boolean | undefined
  t.doesNotThrow(() => { accepted = out.push('hello') })
  t.equal(accepted, true, 'the push source itself is fine: its stream decides')
  t.match(broken.failures, [{ name: 'RangeError' }], 'the subscriber was failed with its error')
})

t.test('a stream whose socket write throws ends as failed, logged; the other subscribers go on', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const channel = app.comet.channel<string>()
  const ids = new Map<string, string>()
  app.get('/comet/:who', (request, reply) => {
    const { who } = request.params as { who: string }
    ids.set(who, request.id)
    const streaming = reply.comet(channel, 'cb')
    if (who === 'broken') {
      const raw = reply.raw as ServerResponse
      raw.write = () => { throw new Error('the socket broke') }
    }
    return streaming
  })
  const url = await listen(app)
  const broken = await open(`${url}/comet/broken`)
  const healthy = await open(`${url}/comet/healthy`)
  const big = 'z'.repeat(20000) // past one batch: written at once, inside publish()
  t.doesNotThrow(() => channel.publish(big), 'publish() does not throw')
  await healthy.waitFor('zzzz')
  await broken.ended
  t.match(logs.filter(line => line.reqId === ids.get('broken') && line.level === 50), [{ err: { message: 'the socket broke' } }], 'the failure is logged as an error of that request')
  t.match(logs.filter(line => line.msg === 'comet stream ended' && line.reqId === ids.get('broken')), [{ reason: 'error' }], 'that stream ended as failed')
  t.equal(channel.size, 1, 'the healthy subscriber is still there')
  channel.publish('after')
  channel.close()
  await healthy.ended
  t.same(messages(healthy.body(), 'cb'), [big, 'after'], 'it got every message')
})
