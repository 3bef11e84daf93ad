// A subscriber whose client stopped reading holds what is published for it until its socket
// drains. maxQueue bounds that in messages, maxQueueBytes in bytes: with large messages the byte
// bound is reached first, long before any engine limit (V8's longest string), and the stream is
// ended as overflowed while every other subscriber, and publish(), go on.
import t from 'tap'
import { build, listen, open, messages, turns, fastAndSlowClients } from './helpers.js'

const BIG = 'x'.repeat(512 * 1024)
// 100 MiB for the stuck subscriber: far past the default bound (8 MiB), far below what a test machine holds.
const MOST = 200

t.test('a stuck subscriber is ended as overflowed once it holds maxQueueBytes, with maxBytes: Infinity', async t => {
  const { logs, channel, ids, done, fast, slow } = await fastAndSlowClients<string>(t)
  let published = 0
  while (channel.size === 2 && published < MOST) {
    channel.publish(`${published}:${BIG}`)
    await fast.waitFor(`${published}:x`)
    published++
    await turns(2) // the stuck socket stays full for whole turns: it is behind, not in a burst
  }
  t.equal(channel.size, 1, `the stuck subscriber left the channel after ${published} messages of 512 KiB`)
  await done.get('slow')
  const endOf = (who: string): unknown[] => logs.filter(line => line.msg === 'comet stream ended' && line.reqId === ids.get(who))
  t.match(endOf('slow'), [{ reason: 'overflow' }], 'as overflowed')
  t.match(logs.filter(line => line.level === 40 && line.reqId === ids.get('slow')),
    [{ maxQueueBytes: 8388608, msg: /fell too far behind/ }], 'logged at warn with the byte bound')

  channel.publish('after')
  await fast.waitFor('"after"')
  t.same(endOf('fast'), [], 'the subscriber that reads is still open')
  t.equal(channel.size, 1, 'only the stuck one left')
  channel.close()
  await fast.ended
  t.equal(messages(fast.body(), 'cb').length, published + 1, 'it got every message')
  slow.req.destroy()
})

t.test('maxQueueBytes set per stream bounds a burst too', async t => {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const channel = app.comet.channel<string>({ maxQueue: 1_000_000 })
  let streaming!: Promise<void>
  app.get('/comet', (request, reply) => {
    streaming = reply.comet(channel, { callback: 'cb', maxQueueBytes: 65536 })
    return streaming
  })
  const client = await open(`${await listen(app)}/comet`)
  client.res.pause()
  let published = 0
  // In one tick: the socket fills on the first write, then the stream holds at most 4 x 64 KiB.
  while (channel.size === 1 && published < 10000) channel.publish(`${published++}:${'y'.repeat(1024)}`)
  t.equal(channel.size, 0, 'the stream left the channel within the burst')
  t.ok(published < 10000, `after ${published} messages of 1 KiB`)
  await streaming
  t.match(logs.filter(line => line.level === 40), [{ maxQueueBytes: 65536 }], 'logged at warn with its own bound')
  client.req.destroy()
})

t.test('invalid maxQueueBytes values are rejected with FST_COMET_INVALID_OPTION', async t => {
  for (const maxQueueBytes of [0, -1, 1.5, '65536', Infinity, 67108865]) {
    await t.rejects(build(t, { maxQueueBytes } as never), { code: 'FST_COMET_INVALID_OPTION', message: /maxQueueBytes/ }, `plugin-wide ${String(maxQueueBytes)}`)
  }
  const { app } = await build(t, { maxQueueBytes: 67108864 })
  app.get('/comet', (request, reply) => reply.comet([], { callback: 'cb', maxQueueBytes: 0 }))
  const res = await app.inject('/comet')
  t.equal(res.statusCode, 500, 'per call: refused before anything is written')
  t.match(res.json(), { code: 'FST_COMET_INVALID_OPTION' })
})
