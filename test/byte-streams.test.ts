// A byte stream (a Node Readable neither in object mode nor with an encoding) is text cut wherever
// the bytes happened to be cut: a UTF-8 character split across two chunks must arrive whole,
// decoded as a stream (as TextDecoder with `stream: true` does), never as two U+FFFD. (Separate
// Uint8Array messages from other sources are each read as UTF-8 on their own, as the README says.)
import t from 'tap'
import { Readable } from 'node:stream'
import { build, messages } from './helpers.js'

const TEXT = 'café · naïve · 💬 · 日本語'

/** The UTF-8 bytes of `text`, cut into pieces of `size` bytes, so that characters straddle the cuts. */
function cut (text: string, size: number): Buffer[] {
  const bytes = Buffer.from(text, 'utf8')
  const pieces: Buffer[] = []
  for (let at = 0; at < bytes.length; at += size) pieces.push(bytes.subarray(at, at + size))
  return pieces
}

/** A byte stream that hands out exactly one piece per read, so no two pieces are joined on the way. */
function byteStream (pieces: Buffer[]): Readable {
  const queue = [...pieces]
  return new Readable({
    highWaterMark: 1,
    read () { this.push(queue.shift() ?? null) }
  })
}

for (const size of [1, 2, 5]) {
  t.test(`a Readable without an encoding, cut every ${size} bytes, arrives as whole characters`, async t => {
    const { app } = await build(t, { padding: 0 })
    const pieces = cut(TEXT, size)
    t.ok(pieces.some(piece => piece.toString('utf8').includes('\ufffd')), 'some pieces end inside a character')
    app.get('/comet', (request, reply) => reply.comet(byteStream(pieces), 'cb'))
    const res = await app.inject('/comet')
    const received = messages(res.body, 'cb') as string[]
    t.ok(received.every(message => typeof message === 'string'), 'each chunk arrives as text')
    t.equal(received.join(''), TEXT, 'the text arrives whole, every character intact')
    t.notOk(received.some(message => message.includes('\ufffd')), 'no replacement character')
  })
}

t.test('a byte stream that ends inside a character ends with one replacement character, not silently short', async t => {
  const { app } = await build(t, { padding: 0 })
  const bytes = Buffer.from('ok 💬', 'utf8')
  app.get('/comet', (request, reply) => reply.comet(byteStream([bytes.subarray(0, bytes.length - 1)]), 'cb'))
  const res = await app.inject('/comet')
  t.equal((messages(res.body, 'cb') as string[]).join(''), 'ok \ufffd')
})
