// Every kind of source delivers every message, in order; anything that is not a source is refused
// before a byte is written.
import t from 'tap'
import { Readable } from 'node:stream'
import { ReadableStream } from 'node:stream/web'
import type { FastifyInstance } from 'fastify'
import type { CometSource } from '../types/index.js'
import { build, messages, withoutHelper } from './helpers.js'

const ITEMS = ['first', { n: 2, text: '</script>' }, [3, 'three'], null, true, 6.5, '\u2028 last']

/** An app with padding 0 and one route whose handler streams what `source()` returns. */
async function serve (t: tap.Test, source: () => CometSource): Promise<FastifyInstance> {
  const { app } = await build(t, { padding: 0, maxBytes: Infinity })
  app.get('/comet', (request, reply) => reply.comet(source(), 'cb'))
  return app
}

async function received (app: FastifyInstance): Promise<unknown[]> {
  const res = await app.inject('/comet')
  if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${res.body}`)
  return messages(res.body, 'cb')
}

/** Records every chunk the async iterator of a Readable takes out of it. */
function recordReads (stream: Readable): unknown[] {
  const reads: unknown[] = []
  const read = stream.read
  stream.read = function (this: Readable, ...args: Parameters<typeof read>) {
    const chunk = read.apply(this, args)
    if (chunk !== null) reads.push(chunk)
    return chunk
  } as typeof read
  return reads
}

t.test('an async generator', async t => {
  const app = await serve(t, () => (async function * () {
    for (const item of ITEMS) {
      await new Promise(setImmediate)
      yield item
    }
  })())
  t.same(await received(app), ITEMS)
})

t.test('an array', async t => {
  const app = await serve(t, () => ITEMS)
  t.same(await received(app), ITEMS)
})

t.test('a Set', async t => {
  const app = await serve(t, () => new Set(['a', 'b', 'c', 1, 2]))
  t.same(await received(app), ['a', 'b', 'c', 1, 2])
})

t.test('a sync generator', async t => {
  const app = await serve(t, () => (function * () { yield * ITEMS })())
  t.same(await received(app), ITEMS)
})

t.test('a Readable in object mode', async t => {
  const app = await serve(t, () => Readable.from(ITEMS.filter(item => item !== null)))
  t.same(await received(app), ITEMS.filter(item => item !== null))
})

t.test('a Readable with setEncoding(utf8): each chunk is one string message', async t => {
  const text = 'héllo wörld 😀 </script> done'
  const bytes = Buffer.from(text)
  // Cut inside the multi-byte characters: the decoder must put them back together.
  const cuts = [0, 2, 9, 15, 17, bytes.length]
  let reads: unknown[] = []
  const app = await serve(t, () => {
    const parts = cuts.slice(1).map((end, i) => bytes.subarray(cuts[i], end))
    const stream = new Readable({
      read () {
        setImmediate(() => this.push(parts.shift() ?? null))
      }
    })
    stream.setEncoding('utf8')
    reads = recordReads(stream)
    return stream
  })
  const got = await received(app)
  t.ok(reads.length >= 2, `the stream gave several chunks (${reads.length})`)
  t.ok(got.every(message => typeof message === 'string'), 'every message is a string')
  t.equal(got.join(''), text, 'the text is whole, multi-byte characters included')
  t.same(got, reads, 'one message per chunk read from the stream')
})

t.test('a Readable of Buffers without encoding: decoded as UTF-8', async t => {
  const parts = ['héllo', ' wörld ', '😀', ' </script>']
  let reads: unknown[] = []
  const app = await serve(t, () => {
    const queue = parts.map(part => Buffer.from(part))
    const stream = new Readable({
      read () {
        setImmediate(() => this.push(queue.shift() ?? null))
      }
    })
    reads = recordReads(stream)
    return stream
  })
  const got = await received(app)
  t.ok(reads.length >= 2, `the stream gave several chunks (${reads.length})`)
  t.ok(reads.every(chunk => Buffer.isBuffer(chunk)), 'the stream gave Buffers')
  t.same(got, reads.map(chunk => (chunk as Buffer).toString('utf8')), 'one string message per Buffer')
  t.equal(got.join(''), parts.join(''))
})

t.test('a web ReadableStream', async t => {
  const app = await serve(t, () => {
    let i = 0
    return new ReadableStream<unknown>({
      pull (controller) {
        if (i < ITEMS.length) controller.enqueue(ITEMS[i++])
        else controller.close()
      }
    })
  })
  t.same(await received(app), ITEMS)
})

t.test('a source function gets an AbortSignal that aborts when the stream ends', async t => {
  let signal: AbortSignal | undefined
  const abortedWhileRunning: boolean[] = []
  const app = await serve(t, () => (context: { signal: AbortSignal }) => {
    signal = context.signal
    return (async function * () {
      for (const item of ITEMS) {
        abortedWhileRunning.push(context.signal.aborted)
        yield item
      }
    })()
  })
  t.same(await received(app), ITEMS)
  t.type(signal, AbortSignal, 'the function received an AbortSignal')
  t.same(abortedWhileRunning, ITEMS.map(() => false), 'not aborted while the source ran')
  t.equal(signal?.aborted, true, 'aborted once the stream ended')
})

t.test('a function returning an async generator', async t => {
  const app = await serve(t, () => async function * () {
    yield * ITEMS
  })
  t.same(await received(app), ITEMS)
})

t.test('a function returning an array', async t => {
  const app = await serve(t, () => () => ['x', 'y'])
  t.same(await received(app), ['x', 'y'])
})

t.test('an empty source gives just the padding, the document start and the helper', async t => {
  const { app } = await build(t)
  app.get('/array', (request, reply) => reply.comet([], 'cb'))
  app.get('/generator', (request, reply) => reply.comet((async function * () {})(), 'cb'))
  for (const url of ['/array', '/generator']) {
    const res = await app.inject(url)
    t.equal(res.statusCode, 200, `${url}: status`)
    t.equal(withoutHelper(res.body), ' '.repeat(5120) + '<html><body>', `${url}: body`)
    t.same(messages(res.body, 'cb'), [], `${url}: no message`)
  }
})

t.test('a large synchronous source arrives complete and in order', async t => {
  const count = 50_000
  const app = await serve(t, () => Array.from({ length: count }, (_, i) => i))
  const got = await received(app)
  t.equal(got.length, count)
  t.ok(got.every((value, i) => value === i), 'every number, in order')
})

t.test('invalid sources answer 500 FST_COMET_INVALID_SOURCE and write nothing', async t => {
  const { app } = await build(t, { padding: 0 })
  let functionSignal: AbortSignal | undefined
  const cases: Array<[string, () => unknown]> = [
    ['null', () => null],
    ['undefined', () => undefined],
    ['a number', () => 42],
    ['a plain object', () => ({ a: 1 })],
    ['a string', () => 'abc'],
    ['a Buffer', () => Buffer.from('abc')],
    ['a Uint8Array', () => new Uint8Array([1, 2])],
    ['a Promise', () => Promise.resolve(['a'])],
    ['a function returning 42', () => ({ signal }: { signal: AbortSignal }) => {
      functionSignal = signal
      return 42
    }],
    ['a function returning a Promise', () => async () => ['a']]
  ]
  cases.forEach(([, source], i) => {
    app.get(`/case${i}`, (request, reply) => reply.comet(source() as CometSource, 'cb'))
  })
  for (const [i, [label]] of cases.entries()) {
    const res = await app.inject(`/case${i}`)
    t.equal(res.statusCode, 500, `${label}: status`)
    t.match(res.headers['content-type'], /^application\/json/, `${label}: a JSON error`)
    t.match(res.json(), { statusCode: 500, code: 'FST_COMET_INVALID_SOURCE' }, `${label}: code`)
    t.notOk(res.body.includes('<html>'), `${label}: no comet document`)
  }
  t.type(functionSignal, AbortSignal, 'the function was called with a signal')
  t.equal(functionSignal?.aborted, true, 'and its signal was aborted, so it can clean up')
})
