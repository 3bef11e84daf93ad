// Pure tests of lib/encode.ts: every message survives the trip through a <script> element, the
// script text can never close or comment out the element, and only safe callback names pass.
import t from 'tap'
import {
  assertCallback,
  encodeMessage,
  paddingChunk,
  batchPrefix,
  BATCH_SUFFIX,
  controlEntry,
  heartbeatScript,
  helperCode,
  messageEntry,
  MAX_CALLBACK_LENGTH,
  MAX_MESSAGE_CHARS
} from '../lib/encode.js'
import { CometChannel } from '../lib/channel.js'
import { messages, replay, replayDocument } from './helpers.js'

const CB = 'parent.cometMessage'

/** One comet document with all the messages in one script, as the stream writes a batch. */
function documentOf (items: unknown[]): string {
  return paddingChunk(0, CB, 20000) + batchPrefix() + items.map(item => messageEntry(encodeMessage(item), undefined)).join('') + BATCH_SUFFIX
}

// Code units, not code points: a lone surrogate is one that is not part of a valid pair.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const UNSAFE = /[<>&\u2028\u2029]/

/** An ASCII label for an assertion: raw line separators would break the TAP output. */
function show (value: unknown): string {
  const json = JSON.stringify(value) ?? String(value)
  return json.slice(0, 40).replace(/[^\x20-\x7e]/g, char => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function unsafeIn (text: string): string[] {
  const found: string[] = []
  if (UNSAFE.test(text)) found.push('an HTML-significant character or a line separator')
  if (LONE_SURROGATE.test(text)) found.push('a lone surrogate')
  return found
}

const DANGEROUS_STRINGS = [
  '',
  'plain',
  '</script>',
  '</SCRIPT >',
  '</script ><script>alert(1)</script>',
  '<!--',
  '-->',
  '<!-- <script>',
  '<script>',
  '<![CDATA[',
  ']]>',
  '"',
  "'",
  '`tick` $x',
  '\\',
  '\\"',
  '\\u003c',
  '\0',
  'a\0b',
  '\u2028',
  '\u2029',
  'line\u2028break\u2029',
  '\uD800',
  '\uDBFF',
  '\uDC00',
  '\uDFFF',
  'a\uD800b',
  'a\uDC00b',
  '\uDC00\uD800', // a low before a high: two lone surrogates, not a pair
  '\uD83D\uDE00',
  '😀🎉 family: 👨‍👩‍👧',
  '\n\r\t\b\f\v',
  '&amp; &lt; &#x3c;',
  '\u0085\u00a0\ufeff',
  'ünïcödé ж 中文',
  ');alert(1);//'
]

t.test('dangerous strings survive a round trip through a script element', async t => {
  const received = messages(documentOf(DANGEROUS_STRINGS))
  t.same(received, DANGEROUS_STRINGS)
  for (let i = 0; i < DANGEROUS_STRINGS.length; i++) {
    t.equal(received[i], DANGEROUS_STRINGS[i], `string ${show(DANGEROUS_STRINGS[i])} is identical`)
  }
})

t.test('the encoded text never contains <, >, &, U+2028, U+2029 or a lone surrogate', async t => {
  for (const value of DANGEROUS_STRINGS) {
    const encoded = encodeMessage(value)
    t.same(unsafeIn(encoded), [], `encoding of ${show(value)} is safe`)
  }
})

t.test('JSON values with dangerous keys and values round trip', async t => {
  const nested = {
    '</script>': '<!--',
    '<script>': ['-->', '\u2028', { '\u2029': '\uD800' }],
    '\uDC00': { deeper: [[['</SCRIPT >', '<![CDATA[', '\0']]] },
    '"\\\'': '"\\\'',
    emoji: '😀',
    numbers: [0, -0.5, 1e21, Number.MAX_SAFE_INTEGER, -42],
    booleans: [true, false],
    nothing: null,
    empty: {},
    emptyList: []
  }
  const values: unknown[] = [
    nested,
    [nested, [nested]],
    0,
    -1.25,
    123456789,
    true,
    false,
    null,
    [],
    {},
    [null, true, 'x</script>'],
    { a: { b: { c: { d: '</script>' } } } }
  ]
  const html = documentOf(values)
  t.same(messages(html), values)
  t.equal(html.split('</script>').length - 1, 2, 'only the closing tags we wrote: the helper and the batch')
  for (const value of values) {
    t.same(unsafeIn(encodeMessage(value)), [], `encoding of ${show(value)} is safe`)
  }
})

t.test('lone surrogates come back as the same code units', async t => {
  const [high, low, reversed] = messages(documentOf(['\uD800', 'x\uDFFF', '\uDC00\uD800'])) as string[]
  t.equal(high.length, 1)
  t.equal(high.charCodeAt(0), 0xD800)
  t.equal(low.charCodeAt(1), 0xDFFF)
  t.same([reversed.charCodeAt(0), reversed.charCodeAt(1)], [0xDC00, 0xD800])
})

// mulberry32: small, fast and deterministic, so a failure can be replayed.
function random (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6D2B79F5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

// Weighted toward what could break out of a script element: listed several times or as whole tokens.
const POOL = [
  '<', '<', '<', '>', '>', '>', '&', '&', '/', '/', '!', '-', '-', '[', ']',
  '</script>', '</SCRIPT >', '<!--', '-->', '<script>', '<![CDATA[', ']]>',
  '"', '"', "'", '`', '\\', '\\', '\0', '\n', '\r', '\t',
  '\u2028', '\u2028', '\u2029', '\u2029',
  '\uD800', '\uDBFF', '\uD83D', '\uDC00', '\uDFFF', '\uDE00', '\uD83D\uDE00', '🎉',
  's', 'c', 'r', 'i', 'p', 't', 'S', 'C', 'R', 'I', 'P', 'T', ' ', 'a', 'é', 'ж', '中',
  '\u0085', '\u00a0', '\ufeff', '\u007f'
]

t.test('fuzz: 2,000 seeded random strings round trip and encode safely', async t => {
  const next = random(0xC0FFEE)
  const corpus: string[] = []
  for (let i = 0; i < 2000; i++) {
    const length = Math.floor(next() * 24)
    let text = ''
    for (let j = 0; j < length; j++) text += POOL[Math.floor(next() * POOL.length)]
    corpus.push(text)
  }
  t.ok(corpus.some(text => LONE_SURROGATE.test(text)), 'the corpus has lone surrogates')
  t.ok(corpus.some(text => text.includes('</script>')), 'the corpus has closing tags')

  const received = messages(documentOf(corpus))
  t.equal(received.length, corpus.length, 'one call per script')
  for (let i = 0; i < corpus.length; i++) {
    const text = corpus[i]
    t.equal(received[i], text, `string #${i} round trips`)
    t.same(unsafeIn(encodeMessage(text)), [], `string #${i} encodes safely`)
  }

  // The same strings as keys and values of objects.
  const objects = corpus.slice(0, 200).map((text, i) => ({ [text]: [text, i, { text }] }))
  t.same(messages(documentOf(objects)), objects, 'objects with random keys and values round trip')
  for (const object of objects) {
    if (unsafeIn(encodeMessage(object)).length > 0) t.fail(`unsafe encoding of ${show(object)}`)
  }
})

t.test('bytes are decoded as UTF-8 text', async t => {
  const text = 'héllo </script> 😀'
  const buffer = Buffer.from(text, 'utf8')
  const bytes = new Uint8Array(new TextEncoder().encode(text))
  const backing = new TextEncoder().encode('PREFIX' + text + 'SUFFIX')
  const sub = backing.subarray(6, backing.length - 6)
  t.equal(sub.byteOffset, 6, 'the subarray starts inside its buffer')
  const bufferSub = Buffer.from('xx' + text + 'yy').subarray(2, -2)
  t.ok(bufferSub.byteOffset > 0)

  t.same(messages(documentOf([buffer, bytes, sub, bufferSub, Buffer.alloc(0)])), [text, text, text, text, ''])
  t.equal(encodeMessage(sub), encodeMessage(text), 'a subarray encodes only its own bytes')
  t.same(unsafeIn(encodeMessage(buffer)), [])
})

t.test('unserializable messages throw FST_COMET_UNSERIALIZABLE_MESSAGE', async t => {
  const circular: Record<string, unknown> = { a: 1 }
  circular.self = circular
  const thrown = new Error('toJSON exploded')
  const throwing = { toJSON () { throw thrown } }

  const withoutCause: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['an object whose toJSON returns undefined', { toJSON: () => undefined }]
  ]
  for (const [name, value] of withoutCause) {
    t.throws(() => encodeMessage(value), { code: 'FST_COMET_UNSERIALIZABLE_MESSAGE', statusCode: 500 }, name)
  }

  const withCause: Array<[string, unknown]> = [
    ['a BigInt', 10n],
    ['a circular object', circular],
    ['an array holding a BigInt', [1, 2n]],
    ['an object whose toJSON throws', throwing]
  ]
  for (const [name, value] of withCause) {
    let caught: (Error & { code?: string, cause?: unknown }) | undefined
    try {
      encodeMessage(value)
    } catch (err) {
      caught = err as Error & { code?: string }
    }
    t.equal(caught?.code, 'FST_COMET_UNSERIALIZABLE_MESSAGE', `${name}: code`)
    t.type(caught?.cause, Error, `${name}: the cause is kept`)
    if (value === throwing) t.equal(caught?.cause, thrown, 'the very error toJSON threw')
    else t.type(caught?.cause, TypeError, `${name}: JSON.stringify's TypeError`)
  }
})

t.test('a message longer than MAX_MESSAGE_CHARS is refused as unserializable, far below the engine limit', async t => {
  // Built by repetition, a string of that length is a tree of a few nodes, not 128 MiB.
  const long = 'x'.repeat(MAX_MESSAGE_CHARS + 1)
  t.throws(() => encodeMessage(long), { code: 'FST_COMET_UNSERIALIZABLE_MESSAGE', message: /longer than 134217728 characters/ }, 'a string')
  const channel = new CometChannel<string>({ history: 10 })
  t.throws(() => channel.publish(long), { code: 'FST_COMET_UNSERIALIZABLE_MESSAGE' }, 'publish() says so')
  t.match(await channel.publish('next'), /-1$/, 'and stored nothing')
  t.equal(encodeMessage('x'.repeat(1000)).length, 1002, 'a long message within it is encoded')
})

t.test('paddingChunk(n) is n spaces, the document start and the helper script, which announces the heartbeat', async t => {
  for (const n of [0, 1, 5120, 65536]) {
    const chunk = paddingChunk(n, 'cb', 20000)
    const helper = '<script>' + helperCode('cb') + '__fastifyComet([2,"open",{"heartbeat":20000},]);</script>'
    t.equal(chunk.length, n + '<html><body>'.length + helper.length, `length for ${n}`)
    t.equal(chunk, ' '.repeat(n) + '<html><body>' + helper, `content for ${n}`)
  }
  t.match(paddingChunk(0, 'cb', 0, 'abc'), /^<html><body><script nonce="abc">\(function\(w\)[^<]*__fastifyComet\(\[2,"open",\{"heartbeat":0\},\]\);<\/script>$/,
    'the helper carries the nonce; heartbeat 0 is announced as such')
})

t.test('liveness: the open and beat control messages reach cometControl only', async t => {
  t.equal(heartbeatScript(undefined), '<script>__fastifyComet([2,"beat",0,]);</script>')
  t.equal(heartbeatScript('n1'), '<script nonce="n1">__fastifyComet([2,"beat",0,]);</script>', 'each heartbeat carries the nonce')
  const html = paddingChunk(5, CB, 300) + heartbeatScript(undefined) + batchPrefix() + messageEntry('"a"', undefined) + BATCH_SUFFIX + heartbeatScript(undefined)
  const replayed = replayDocument(html, CB, { liveness: true })
  t.same(replayed.all, [['control', 'open', { heartbeat: 300 }], ['control', 'beat', 0], ['message', 'a'], ['control', 'beat', 0]], 'open first, then beats in order with the messages')
  const plain = replayDocument(html, CB, { control: false, liveness: true })
  t.same(plain.all, [['message', 'a']], 'a callback without cometControl gets the messages only')
  t.same(plain.errors, [], 'and nothing is reported')
})

t.test('one batch: prefix, entries and suffix make one script element', async t => {
  t.equal(batchPrefix() + messageEntry('"x"', undefined) + BATCH_SUFFIX, '<script>__fastifyComet([0,"x",]);</script>')
  t.equal(batchPrefix('n1') + messageEntry('1', '"7"') + controlEntry('reconnect', { delay: 0 }) + BATCH_SUFFIX,
    '<script nonce="n1">__fastifyComet([1,1,"7",2,"reconnect",{"delay":0},]);</script>')
})

t.test('the helper script holds no markup, whatever the callback path', async t => {
  for (const callback of ['cb', 'parent.cometMessage', 'window.parent.app.onEvent']) {
    const code = helperCode(callback)
    t.notOk(code.includes('<'), `no < in the helper for ${callback}`)
    t.notOk(/eval|Function\(/.test(code), 'no eval')
  }
})

t.test('the helper calls the callback once per entry, in order, with or without an id', async t => {
  const html = paddingChunk(3, CB, 20000) + batchPrefix() +
    messageEntry(encodeMessage('a'), undefined) + messageEntry(encodeMessage({ b: 2 }), encodeMessage('id-b')) +
    messageEntry(encodeMessage(null), undefined) + BATCH_SUFFIX + batchPrefix() + messageEntry(encodeMessage('c'), encodeMessage('')) + BATCH_SUFFIX
  t.same(replay(html), [['a'], [{ b: 2 }, 'id-b'], [null], ['c', '']], 'one argument without an id, two with one')
})

t.test('control entries reach cometControl only, in order with the messages', async t => {
  const html = paddingChunk(0, CB, 20000) + batchPrefix() + messageEntry('"a"', undefined) +
    controlEntry('reset', { lastEventId: '</script>' }) + messageEntry('"b"', undefined) + BATCH_SUFFIX
  const order: string[] = []
  const replayed = replayDocument(html, CB, { receive: message => order.push(String(message)) })
  t.same(replayed.calls, [['a'], ['b']], 'the callback never sees a control message')
  t.same(replayed.controls, [['reset', { lastEventId: '</script>' }]])
  const plain = replayDocument(html, CB, { control: false })
  t.same(plain.calls, [['a'], ['b']], 'a callback without cometControl gets the messages only')
  t.same(plain.errors, [], 'and nothing is reported')
  t.notOk(controlEntry('x', { v: '</script><!--' }).includes('<'), 'control details are escaped like messages')
})

t.test('a throwing callback is reported and the next entry is still delivered', async t => {
  const html = paddingChunk(0, CB, 20000) + batchPrefix() + ['one', 'boom', 'three'].map(text => messageEntry(encodeMessage(text), undefined)).join('') + BATCH_SUFFIX
  const thrown = new Error('boom')
  const replayed = replayDocument(html, CB, { receive: message => { if (message === 'boom') throw thrown } })
  t.same(replayed.calls.map(args => args[0]), ['one', 'boom', 'three'])
  t.same(replayed.errors, [thrown], 'reported through reportError')
})

t.test('a throwing callback is rethrown on a timer where reportError is missing', async t => {
  const html = paddingChunk(0, CB, 20000) + batchPrefix() + messageEntry('"x"', undefined) + BATCH_SUFFIX
  const timers: Array<() => void> = []
  const window: Record<string, unknown> = {
    document: undefined,
    parent: { cometMessage: () => { throw new Error('late') } },
    setTimeout: (fn: () => void) => { timers.push(fn) }
  }
  window.window = window
  const vm = await import('node:vm')
  vm.createContext(window)
  for (const [, code] of html.matchAll(/<script>([\s\S]*?)<\/script>/g)) vm.runInContext(code, window)
  t.equal(timers.length, 1, 'one timer')
  t.throws(() => timers[0](), { message: 'late' }, 'which throws the error')
})

t.test('the callback path is looked up at every delivery', async t => {
  const html = paddingChunk(0, CB, 20000) + batchPrefix() + ['a', 'b', 'c'].map(text => messageEntry(encodeMessage(text), undefined)).join('') + BATCH_SUFFIX
  const seen: string[] = []
  const context: Record<string, unknown> = { document: { currentScript: null } }
  const parent: Record<string, unknown> = {
    cometMessage: (message: string) => {
      seen.push('first:' + message)
      parent.cometMessage = (later: string) => { seen.push('second:' + later) }
    }
  }
  context.window = context
  context.parent = parent
  const vm = await import('node:vm')
  vm.createContext(context)
  for (const [, code] of html.matchAll(/<script>([\s\S]*?)<\/script>/g)) vm.runInContext(code, context)
  t.same(seen, ['first:a', 'second:b', 'second:c'], 'the handler installed by the first call gets the rest')
})

t.test('a document opened as a page (not framed) calls nothing', async t => {
  const html = paddingChunk(0, CB, 20000) + batchPrefix() + messageEntry('"x"', undefined) + controlEntry('reconnect', { delay: 0 }) + BATCH_SUFFIX
  const replayed = replayDocument(html, CB, { framed: false })
  t.same(replayed.calls, [], 'no call')
  t.same(replayed.controls, [], 'no control')
  t.same(replayed.errors, [], 'no error either')
})

t.test('the helper removes the scripts that already ran, and what came before them', async t => {
  const nodes = ['helper', 'newline', 'script']
  const body = {
    get firstChild () { return nodes[0] ?? null },
    removeChild (node: string) { nodes.splice(nodes.indexOf(node), 1) }
  }
  const html = paddingChunk(0, CB, 20000) + batchPrefix() + messageEntry('"x"', undefined) + BATCH_SUFFIX
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map(match => match[1])
  const context: Record<string, unknown> = { document: { currentScript: null }, parent: { cometMessage () {} } }
  context.window = context
  const vm = await import('node:vm')
  vm.createContext(context)
  vm.runInContext(scripts[0], context)
  ;(context.document as Record<string, unknown>).currentScript = { parentNode: body, toString: () => 'script' }
  nodes[2] = (context.document as { currentScript: string }).currentScript
  vm.runInContext(scripts[1], context)
  t.same(nodes, [], 'the helper, the text between and the running script are gone')
})

t.test('assertCallback accepts dotted identifier paths', async t => {
  const valid = 'a' + '_$b9'.repeat(49) + 'xyz'
  t.equal(valid.length, MAX_CALLBACK_LENGTH)
  t.equal(valid.length, 200)
  for (const name of ['cometMessage', 'parent.cometMessage', 'window.parent.app.onEvent', '$', '_a1', 'a.$b', valid]) {
    t.equal(assertCallback(name), name, `${name.slice(0, 40)} is accepted`)
  }
})

t.test('assertCallback refuses everything else with a 400 that does not echo the input', async t => {
  const rejected: unknown[] = [
    'alert(1)//', 'a;b', 'a[0]', '</script>', '', ' ', 'a.', '.a', 'a..b', '1a', 'a b', 'a-b',
    'é', 'café.x', '\u0440\u0430rent.cb', 'a\u200b', 'a\n', '\na', 'a'.repeat(201),
    42, null, undefined, {}, [], ['cb'], true, Symbol('cb'),
    // reserved words and literals: `this` too, by design
    'this', 'this.x', 'new', 'delete.x', 'typeof', 'null', 'true', 'undefined', 'NaN', 'a.class',
    // sinks
    'eval', 'window.eval', 'Function', 'a.constructor.constructor', '__proto__.x', 'setTimeout',
    'window.setInterval', 'document.write', 'document.writeln', 'location.replace', 'parent.document.body.setHTMLUnsafe', 'Document.parseHTMLUnsafe', 'navigation.navigate', 'location.assign',
    'a.prototype', 'el.innerHTML', 'window.open'
  ]
  for (const input of rejected) {
    const label = typeof input === 'symbol' ? 'a symbol' : show(input)
    let caught: (Error & { code?: string, statusCode?: number }) | undefined
    try {
      assertCallback(input)
    } catch (err) {
      caught = err as Error & { code?: string, statusCode?: number }
    }
    t.equal(caught?.code, 'FST_COMET_INVALID_CALLBACK', `${label} is refused`)
    t.equal(caught?.statusCode, 400, `${label}: status 400`)
    if (typeof input === 'string' && input.length > 2) {
      t.notOk(caught?.message.includes(input), `${label}: the message does not repeat the input`)
    }
  }
})
