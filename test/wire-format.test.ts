// The wire format seen from the socket: every write after the first is exactly one script element
// with one nonce, holding entries for the helper; batches cut near 16 KiB; control messages.
import t from 'tap'
import { kCometFeed, type CometSubscriber } from '../lib/feed.js'
import { BATCH_CHARS } from '../lib/stream.js'
import { build, listen, open, onWrite, replayDocument } from './helpers.js'

const SCRIPT_ELEMENT = /^<script nonce="([0-9a-f]{32})">__fastifyComet\(\[[^<]*\]\);<\/script>$/

for (const size of [BATCH_CHARS - 20, BATCH_CHARS - 1, BATCH_CHARS, BATCH_CHARS + 1, 100]) {
  t.test(`messages of ${size} characters: one script element per write, every message once, in order`, async t => {
    const { app } = await build(t, { padding: 0 })
    const writes: string[] = []
    const items = Array.from({ length: 40 }, (_, i) => `${i}:`.padEnd(size, 'x'))
    app.get('/comet', (request, reply) => {
      onWrite(reply.raw, chunk => { writes.push(String(chunk)) })
      return reply.comet(items, { callback: 'cb', maxBytes: Infinity, id: (item: string) => item.slice(0, item.indexOf(':')) })
    })
    const stream = await open(`${await listen(app)}/comet`)
    await stream.ended
    const [first, ...batches] = writes
    t.match(first, /^<html><body><script nonce="[0-9a-f]{32}">\(function\(w\)/, 'the first write: the document and its helper')
    const nonces = new Set<string>()
    for (const batch of batches) {
      const match = SCRIPT_ELEMENT.exec(batch)
      t.ok(match, 'a whole script element with one nonce')
      nonces.add(match?.[1] ?? '')
      t.equal(batch.split('nonce=').length, 2, 'the nonce once per script')
      // A batch is cut at the entry that reaches the limit: it holds at most one entry past it.
      t.ok(batch.length < BATCH_CHARS + size + 100, `${batch.length} characters`)
    }
    t.equal(nonces.size, 1, 'the response\'s nonce')
    if (size >= BATCH_CHARS) t.equal(batches.length, items.length, 'a message as big as a batch leaves alone')
    else if (size === 100) t.ok(batches.length < 3, 'small messages share a script')
    t.same(replayDocument(stream.body(), 'cb').calls, items.map(item => [item, item.slice(0, item.indexOf(':'))]))
  })
}

t.test('control messages go in order with the messages, to cometControl only', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet({
    [kCometFeed]: () => ({
      maxQueue: 10,
      start (stream: CometSubscriber) {
        stream.deliver('0,"a",')
        stream.control('reset', { lastEventId: '</script><!--' })
        stream.deliver('0,"b",')
        stream.end('done')
        stream.control('late', {}) // after the end: dropped
      },
      stop () {}
    })
  } as never, 'cb'))
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  const replayed = replayDocument(stream.body(), 'cb')
  t.same(replayed.calls, [['a'], ['b']])
  t.same(replayed.controls, [['reset', { lastEventId: '</script><!--' }]])
  t.equal(stream.body().split('</script>').length - 1, 2, 'the helper and one batch')
})

t.test('a control message alone leaves at once', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet({
    [kCometFeed]: () => ({ maxQueue: 10, start (stream: CometSubscriber) { stream.control('hello', { n: 1 }) }, stop () {} })
  } as never, 'cb'))
  const stream = await open(`${await listen(app)}/comet`)
  await stream.waitFor('2,"hello",{"n":1},]);</script>')
  t.pass('written without a message after it')
  stream.req.destroy()
})

for (const [reason, options] of [['max-bytes', { maxBytes: 3000 }], ['max-duration', { maxDuration: 30 }]] as const) {
  t.test(`${reason}: the document ends by asking the client to reconnect at once`, async t => {
    const { app } = await build(t, { padding: 0 })
    app.get('/comet', (request, reply) => reply.comet(async function * ({ signal }) {
      for (let i = 0; !signal.aborted; i++) {
        yield 'x'.repeat(100)
        if (reason === 'max-duration') await new Promise(resolve => setImmediate(resolve))
      }
    }, { callback: 'cb', ...options }))
    const stream = await open(`${await listen(app)}/comet`)
    await stream.ended
    const { controls, calls } = replayDocument(stream.body(), 'cb')
    t.same(controls, [['reconnect', { delay: 0 }]])
    t.ok(calls.length > 0, 'after the messages')
    t.ok(stream.body().endsWith('2,"reconnect",{"delay":0},]);</script>'), 'as the very last entry')
  })
}
