// Streams publish their open and end on node:diagnostics_channel, as undici and Fastify do, with
// the request, the reply, the reason and the counts; with no subscriber, nothing is published.
import t, { type Test } from 'tap'
import diagnostics from 'node:diagnostics_channel'
import type { CometStreamEndMessage, CometStreamOpenMessage } from '../types/index.js'
import { build, listen, open, deferred } from './helpers.js'

const OPEN = 'fastify-comet:stream:open'
const END = 'fastify-comet:stream:end'

/** Records what `name` publishes until `t` ends, and hands each message to `then`. */
function record<T> (t: Test, name: string, then?: (message: T) => void): T[] {
  const seen: T[] = []
  const onMessage = (message: unknown): void => {
    seen.push(message as T)
    then?.(message as T)
  }
  diagnostics.subscribe(name, onMessage)
  t.teardown(() => { diagnostics.unsubscribe(name, onMessage) })
  return seen
}

t.test('open and end carry the request, the reply, the reason and the counts', async t => {
  const opened = record<CometStreamOpenMessage>(t, OPEN)
  const ended = record<CometStreamEndMessage>(t, END)
  const { app } = await build(t, { padding: 10 })
  const replies: unknown[] = []
  app.get('/comet', (request, reply) => {
    replies.push(reply)
    return reply.comet(['one', 'two'], 'cb')
  })
  const client = await open(`${await listen(app)}/comet?room=7`)
  await client.ended // the end is published as the server ends the response, before the client sees it

  t.equal(opened.length, 1, 'one open')
  t.equal(opened[0].reply, replies[0], "the route's reply")
  t.equal(opened[0].request, opened[0].reply.request, 'and its request')
  t.equal(opened[0].request.url, '/comet?room=7')
  t.equal(ended.length, 1, 'one end')
  const [end] = ended
  t.equal(end.reply, replies[0], 'the same reply')
  t.equal(end.request, opened[0].request, 'the same request')
  t.equal(end.reason, 'done')
  t.equal(end.messages, 2)
  t.equal(end.bytes, Buffer.byteLength(client.body()), 'every byte the client received')
  t.ok(Number.isInteger(end.durationMs) && end.durationMs >= 0, 'a duration in whole milliseconds')
})

t.test('a client that leaves is published as client-gone, once', async t => {
  const opened = record<CometStreamOpenMessage>(t, OPEN)
  const ended = deferred<CometStreamEndMessage>()
  const ends = record<CometStreamEndMessage>(t, END, ended.resolve)
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel()
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  channel.publish('hi')
  await client.waitFor('0,"hi",')
  t.equal(opened.length, 1)
  client.req.destroy()
  const end = await ended.promise
  t.match(end, { reason: 'client-gone', messages: 1 })
  channel.close()
  t.equal(ends.length, 1, 'published once')
})

t.test('with no subscriber nothing is published', async t => {
  const channels = [diagnostics.channel(OPEN), diagnostics.channel(END)]
  // Subscribed once and let go again: hasSubscribers is false, as in an application without APM.
  const nobody = (): void => {}
  for (const channel of channels) {
    channel.subscribe(nobody)
    channel.unsubscribe(nobody)
  }
  t.notOk(channels.some(channel => channel.hasSubscribers), 'no subscribers')
  let published = 0
  for (const channel of channels) {
    Object.defineProperty(channel, 'publish', { value: () => { published++ }, configurable: true })
  }
  t.teardown(() => { for (const channel of channels) delete (channel as { publish?: unknown }).publish })
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  await (await open(`${await listen(app)}/comet`)).ended
  await app.close()
  t.equal(app.comet.stats().streams.ended, 1, 'the stream ran and ended')
  t.equal(published, 0, 'publish() was never called')
})
