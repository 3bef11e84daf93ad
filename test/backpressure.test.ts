// A client that stops reading stops the source: nothing is pulled while the socket is full, and
// every message still arrives, in order, once the client reads again.
import t, { type Test } from 'tap'
import type { ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { CometSource } from '../types/index.js'
import { build, listen, open, messages, firstBlockedWrite, turns, type OpenStream } from './helpers.js'

const COUNT = 5000
const PAYLOAD = 'x'.repeat(4000) // 20 MB in all: far more than the socket buffers hold

/**
 * Streams `source(raw)` on /comet to a client that stops reading at once; resolves when a write
 * first finds the socket full.
 */
async function pausedClient (t: Test, source: (raw: ServerResponse) => CometSource): Promise<{ raw: ServerResponse, stream: OpenStream }> {
  const { app } = await build(t, { padding: 0, maxBytes: Infinity })
  let raw!: ServerResponse
  let firstBlock!: Promise<void>
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    firstBlock = firstBlockedWrite(raw)
    return reply.comet(source(raw), 'cb')
  })
  const stream = await open(`${await listen(app)}/comet`)
  stream.res.pause()
  await firstBlock
  return { raw, stream }
}

t.test('a paused client blocks the source until drain, then gets everything in order', async t => {
  let pulled = 0
  let pulledWhileBlocked = 0
  const { raw, stream } = await pausedClient(t, raw => (async function * () {
    for (let i = 0; i < COUNT; i++) {
      pulled++
      if (raw.writableNeedDrain) pulledWhileBlocked++
      yield { i, payload: PAYLOAD }
    }
  }()))
  await turns(50)
  const pulledAtBlock = pulled
  t.ok(pulledAtBlock < COUNT, `the source stopped at ${pulledAtBlock} of ${COUNT} messages`)
  t.ok(raw.writableNeedDrain, 'the server is waiting for drain')
  await turns(200)
  t.equal(pulled, pulledAtBlock, 'nothing more was pulled while the client was not reading')
  // At most the message already requested when a queued flush filled the socket.
  t.ok(pulledWhileBlocked <= 1, `${pulledWhileBlocked} pulled while blocked`)

  stream.res.resume()
  await stream.ended
  const received = messages(stream.body(), 'cb') as Array<{ i: number }>
  t.equal(received.length, COUNT)
  t.ok(received.every((message, index) => message.i === index), 'in order, none lost or repeated')
})

t.test('a sync source is paused by backpressure too', async t => {
  let pulled = 0
  function * forever (): Generator<string> {
    for (;;) {
      pulled++
      yield PAYLOAD
    }
  }
  const { raw, stream } = await pausedClient(t, () => forever())
  await turns(20)
  const pulledAtBlock = pulled
  await turns(200)
  t.equal(pulled, pulledAtBlock, 'an endless sync source is not pulled while blocked')
  t.ok(pulledAtBlock < 20000, `stopped after ${pulledAtBlock} messages`)
  stream.req.destroy()
  await once(raw, 'close')
})

t.test('a source that yields one message per tick stops being pulled once its writes fill the socket', async t => {
  let pulled = 0
  let pulledWhileBlocked = 0
  const { raw, stream } = await pausedClient(t, raw => async function * () {
    for (;;) {
      // One message per turn of the event loop: each leaves in its own small write.
      await new Promise(setImmediate)
      pulled++
      if (raw.writableNeedDrain) pulledWhileBlocked++
      yield PAYLOAD
    }
  })
  await turns(50)
  const pulledAtBlock = pulled
  await turns(200)
  t.equal(pulled, pulledAtBlock, 'nothing more was pulled while the socket was full')
  t.ok(pulledWhileBlocked <= 1, `${pulledWhileBlocked} pulled while blocked`)
  stream.req.destroy()
  await once(raw, 'close')
})
