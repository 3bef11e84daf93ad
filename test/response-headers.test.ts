// Headers the application set on the reply reach the comet response, but never at the cost of the
// protocol: an application's Transfer-Encoding cannot leave the body unframed, and a header with
// an invalid name is refused before the response is touched, so the error response is clean.
import t from 'tap'
import net from 'node:net'
import { once } from 'node:events'
import { build, listen, messages } from './helpers.js'

/**
 * One GET over a raw socket, with `Connection: close` so that the server's close marks the end
 * whatever the framing (an unframed body on a kept connection would never end). Resolves with the
 * head and the raw body.
 */
async function rawGet (port: number, path: string): Promise<{ head: string, body: Buffer }> {
  const socket = net.connect(port, '127.0.0.1')
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => { chunks.push(chunk) })
  await once(socket, 'close')
  const received = Buffer.concat(chunks)
  const split = received.indexOf('\r\n\r\n')
  return { head: received.subarray(0, split).toString(), body: received.subarray(split + 4) }
}

/** Decodes a chunked body; throws when it is not valid chunked framing ending with the last chunk. */
function dechunk (body: Buffer): string {
  const parts: Buffer[] = []
  let at = 0
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at)
    if (lineEnd === -1) throw new Error('chunk size line missing: the body is not chunked')
    const sizeText = body.subarray(at, lineEnd).toString()
    if (!/^[0-9a-f]+$/i.test(sizeText)) throw new Error(`not a chunk size: ${JSON.stringify(sizeText.slice(0, 20))}`)
    const size = parseInt(sizeText, 16)
    if (size === 0) return Buffer.concat(parts).toString()
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size))
    at = lineEnd + 2 + size + 2
  }
}

function headerLines (head: string, name: string): string[] {
  return head.split('\r\n').filter(line => line.toLowerCase().startsWith(`${name}:`))
}

for (const encoding of ['gzip', 'identity', 'deflate, gzip']) {
  t.test(`an application's Transfer-Encoding: ${encoding} still leaves a properly chunked body`, async t => {
    const { app } = await build(t, { padding: 0 })
    app.addHook('onRequest', async (request, reply) => { reply.header('transfer-encoding', encoding) })
    app.get('/comet', (request, reply) => reply.comet(['one', 'two'], 'cb'))
    await listen(app)
    const { port } = app.server.address() as { port: number }
    const { head, body } = await rawGet(port, '/comet')
    t.match(head, /^HTTP\/1\.1 200 /, 'a comet response')
    t.same(headerLines(head, 'transfer-encoding').map(line => line.toLowerCase()), ['transfer-encoding: chunked'], 'framed with chunked encoding, and only that')
    let text = ''
    t.doesNotThrow(() => { text = dechunk(body) }, 'the body is valid chunked framing with a last chunk')
    t.same(messages(text, 'cb'), ['one', 'two'], 'the messages arrive')
  })
}

for (const name of ['bad name', 'bad(name)', 'bad\u00e9name']) {
  t.test(`a reply header named ${JSON.stringify(name)} is refused before the response is touched`, async t => {
    const { app } = await build(t, { padding: 0 })
    let pulled = 0
    app.addHook('onRequest', async (request, reply) => { reply.header(name, 'value') })
    app.get('/comet', (request, reply) => reply.comet((function * () {
      pulled++
      yield 'one'
    }()), 'cb'))
    app.get('/fine', (request, reply) => reply.comet(['fine'], 'cb'))
    await listen(app)
    const { port } = app.server.address() as { port: number }
    const { head, body } = await rawGet(port, '/comet')
    t.match(head, /^HTTP\/1\.1 500 /, 'a 500')
    t.equal(headerLines(head, 'x-accel-buffering').length, 0, 'without the comet headers (nothing was set before the check)')
    t.notMatch(head, /no-store, no-transform/, 'nor the comet cache policy')
    let text = ''
    t.doesNotThrow(() => { text = dechunk(body) }, 'a whole, framed error body')
    t.match(text, '"statusCode":500', 'the error response')
    t.notMatch(text, '<script', 'no comet script')
    t.equal(pulled, 0, 'the source was never pulled')
    const fine = await rawGet(port, '/fine')
    t.match(fine.head, /^HTTP\/1\.1 500 /, 'the route with the hook still answers cleanly')
  })
}
