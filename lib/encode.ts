// Pure text work: which callback names are allowed, and how a message becomes script-safe text.
// Nothing here touches a socket, so every rule can be tested (and fuzzed) on its own.
import { describeValue, FST_COMET_INVALID_CALLBACK, FST_COMET_INVALID_MESSAGE_ID, FST_COMET_UNSERIALIZABLE_MESSAGE } from './errors.js'

export const MAX_CALLBACK_LENGTH = 200

// ASCII identifiers only: non-ASCII letters are valid JavaScript but invite look-alike names.
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

// Words that are not identifiers (reserved words and literals) or that would turn a message into
// code or markup if a page let a visitor choose the callback (eval(msg), document.write(msg),
// setTimeout(msg), location.replace(msg), x.constructor.constructor(msg), ...). Checked on every
// segment, so `window.eval` is refused as well as `eval`.
const REFUSED_SEGMENTS = new Set([
  // ECMAScript reserved words, strict-mode reserved words and literals
  'await', 'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete',
  'do', 'else', 'enum', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'implements',
  'import', 'in', 'instanceof', 'interface', 'let', 'new', 'null', 'package', 'private', 'protected',
  'public', 'return', 'static', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'var',
  'void', 'while', 'with', 'yield', 'arguments', 'undefined', 'NaN', 'Infinity',
  // sinks that evaluate a string as code or HTML, or reach them through the prototype chain
  'eval', 'Function', 'constructor', 'prototype', '__proto__', '__defineGetter__',
  '__defineSetter__', '__lookupGetter__', '__lookupSetter__', 'setTimeout', 'setInterval',
  'setImmediate', 'execScript', 'importScripts', 'write', 'writeln', 'open', 'assign', 'replace',
  'insertAdjacentHTML', 'createContextualFragment', 'parseFromString', 'innerHTML', 'outerHTML',
  'srcdoc', 'setHTMLUnsafe', 'parseHTMLUnsafe', 'navigate',
  // the comet document's own helper: calling it from itself would loop
  '__fastifyComet'
])

/** Returns the callback when it is a safe dotted identifier path; throws FST_COMET_INVALID_CALLBACK otherwise. */
export function assertCallback (callback: unknown): string {
  if (typeof callback !== 'string' || callback.length === 0 || callback.length > MAX_CALLBACK_LENGTH) {
    throw new FST_COMET_INVALID_CALLBACK(MAX_CALLBACK_LENGTH)
  }
  for (const segment of callback.split('.')) {
    if (!IDENTIFIER.test(segment) || REFUSED_SEGMENTS.has(segment)) {
      throw new FST_COMET_INVALID_CALLBACK(MAX_CALLBACK_LENGTH)
    }
  }
  return callback
}

// Characters that could end the <script> element (`</script>`), open an HTML comment (`<!--`)
// that swallows the rest of the document, or end a JavaScript line (U+2028/U+2029 in old engines).
// Each becomes a \uXXXX escape, which JSON.parse and the JS parser read back as the same character.
const SCRIPT_UNSAFE = /[<>&\u2028\u2029]/g
// Most messages have none of them: a plain test is much cheaper than a replace that finds nothing.
const HAS_SCRIPT_UNSAFE = /[<>&\u2028\u2029]/
const SCRIPT_ESCAPES: Record<string, string> = {
  '<': '\\u003c',
  '>': '\\u003e',
  '&': '\\u0026',
  '\u2028': '\\u2028',
  '\u2029': '\\u2029'
}
const escapeUnsafe = (char: string): string => SCRIPT_ESCAPES[char]

/**
 * The message as a JavaScript expression that is safe inside an HTML <script> element.
 * Strings become string literals, JSON values their JSON text, bytes are read as UTF-8 text.
 * JSON.stringify writes lone surrogates as \uXXXX, so they reach the browser unchanged.
 */
export function encodeMessage (message: unknown): string {
  let json: string | undefined
  try {
    if (typeof message === 'string') {
      json = JSON.stringify(assertLength(message))
    } else if (message instanceof Uint8Array) {
      json = JSON.stringify(assertLength(Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('utf8')))
    } else {
      json = JSON.stringify(message)
      if (json === undefined) throw new TypeError('JSON has no representation for it')
      // In a JavaScript object literal, a "__proto__" key sets the prototype instead of making an own
      // property, so such a message is sent as JSON text for the browser's JSON.parse to read.
      if (json.includes('"__proto__":')) json = `JSON.parse(${JSON.stringify(json)})`
    }
    return scriptSafe(assertLength(json))
  } catch (err) {
    // BigInt, circular structures, a throwing toJSON, a message beyond MAX_MESSAGE_CHARS
    throw new FST_COMET_UNSERIALIZABLE_MESSAGE(describeValue(message), (err as Error).message, { cause: err })
  }
}

// One message may be large, but never near the engine's longest string (about 512 Mi characters):
// with a stream's queue (at most 4 x 64 MiB, see options.ts), every string built from it stays
// below that, so no publish, batch or write can fail on it.
export const MAX_MESSAGE_CHARS = 134217728

/** Checked before the text is read: a string built by concatenation need not be flattened for it. */
function assertLength (text: string): string {
  if (text.length > MAX_MESSAGE_CHARS) throw new RangeError(`longer than ${MAX_MESSAGE_CHARS} characters`)
  return text
}

/** Text with nothing that could end its <script> element; already safe text comes back as is. */
export function scriptSafe (text: string): string {
  return HAS_SCRIPT_UNSAFE.test(text) ? text.replace(SCRIPT_UNSAFE, escapeUnsafe) : text
}

/** The id that `idOf` gives a message, encoded like a message; undefined without an id. */
export function encodeId<T> (idOf: ((message: T) => unknown) | undefined, message: T): string | undefined {
  if (idOf === undefined) return undefined
  const id = idOf(message)
  if (id === undefined) return undefined
  if (typeof id !== 'string') throw new FST_COMET_INVALID_MESSAGE_ID(typeof id)
  return encodeMessage(id)
}

// The wire format. The document starts with the padding, `<html><body>` and one helper script
// that defines HELPER on the comet document's window. Every later write is one script element,
// `<script nonce="…">__fastifyComet([entries]);</script>`, whose flat array holds one entry per
// message or control message, each ending with a comma:
//   0,MESSAGE,            callback(message)
//   1,MESSAGE,ID,         callback(message, id)
//   2,TYPE,DETAIL,        callback.cometControl(type, detail), only if the callback has one
//   3,KEY,                the key of the message entries that follow in this script (a
//                         multiplexed stream): callback(message, id, key), id undefined when none
// One element per write instead of one per message is what lets a browser absorb hundreds of
// thousands of messages a second, and the nonce is sent once per write, not once per message.
//
// Liveness, for the shipped client's watchdog (a browser fires no event on a document cut off
// mid-stream): the helper script ends by handing itself `2,"open",{"heartbeat":MS},`, the longest
// silence the server allows itself (0: none promised), and each heartbeat is a script of its own,
// `__fastifyComet([2,"beat",0,]);`, rather than whitespace the page cannot see.

/** The helper's name on the comet document's window; refused as a callback segment. */
export const HELPER = '__fastifyComet'

/**
 * The helper, as script code with the callback path written in. It calls the callback once per
 * entry, in order, looking the path up each time (a page may replace its handler); a throwing
 * callback is reported like an uncaught error and the next entry is still delivered. It removes
 * the scripts already run, so the document stays a handful of nodes. A document that is not in
 * a frame (someone opened the comet URL as a page) calls nothing. The code holds no `<` at all.
 */
export function helperCode (callback: string): string {
  return '(function(w){"use strict";var d=w.document;' +
    'function report(e){if(typeof w.reportError==="function")w.reportError(e);else w.setTimeout(function(){throw e})}' +
    `w.${HELPER}=w.parent===w?function(){}:function(b){` +
    'var s=d&&d.currentScript,p=s&&s.parentNode;' +
    'if(p){while(p.firstChild!==s)p.removeChild(p.firstChild);p.removeChild(s)}' +
    // Each script starts without a key: a single-source stream never writes one, and its callback
    // is called with the message (and id) alone, as before keys existed.
    'for(var i=0,key;i!==b.length;){var k=b[i];try{' +
    `if(k===0){i+=2;if(key===void 0)${callback}(b[i-1]);else ${callback}(b[i-1],void 0,key)}` +
    `else if(k===1){i+=3;if(key===void 0)${callback}(b[i-2],b[i-1]);else ${callback}(b[i-2],b[i-1],key)}` +
    'else if(k===3){i+=2;key=b[i-1]}' +
    `else{i+=3;var f=${callback};if(typeof f==="function"&&typeof f.cometControl==="function")f.cometControl(b[i-2],b[i-1])}` +
    '}catch(e){report(e)}}}})(window);'
}

function scriptTag (nonce: string | undefined): string {
  return nonce === undefined ? '<script>' : `<script nonce="${nonce}">`
}

/**
 * The first chunk: whitespace that makes browsers start rendering at once, the document, and the
 * helper script, which also delivers the `open` control message (openEntry).
 */
export function paddingChunk (bytes: number, callback: string, heartbeat: number, nonce?: string, keys?: readonly string[], poll = 0): string {
  return ' '.repeat(bytes) + '<html><body>' + scriptTag(nonce) + helperCode(callback) +
    HELPER + '([' + openEntry(heartbeat, keys, poll) + BATCH_SUFFIX
}

/**
 * The `open` control message: the heartbeat period, a multiplexed stream's keys, and for a poll
 * the route's poll timeout, which the client watches instead of heartbeats.
 */
export function openEntry (heartbeat: number, keys?: readonly string[], poll = 0): string {
  const open: Record<string, unknown> = { heartbeat }
  if (keys !== undefined) open.keys = keys
  if (poll > 0) open.poll = poll
  return controlEntry('open', open)
}

// encodeMessage's one construct that JSON lacks: a message with a "__proto__" key, sent as
// JSON.parse("…"). Only a message is ever wrapped (keys and ids are strings, and the details of
// control entries are the plugin's own objects, with no such key), and then whole: it is the
// value right after the entry's kind (`0,` or `1,`), where no JSON value can start with a J.
const WRAPPER = 'JSON.parse('
const WRAPPED_AT = 2
const LITERAL_AT = WRAPPED_AT + WRAPPER.length

/** An entry as JSON text, for a JSON poll: a wrapped message becomes the JSON text it wraps. */
export function jsonEntry (entry: string): string {
  if (!entry.startsWith(WRAPPER, WRAPPED_AT)) return entry
  // The wrapper's argument is one JSON string literal: it ends at its first unescaped quote.
  let end = LITERAL_AT + 1
  while (entry[end] !== '"') end += entry[end] === '\\' ? 2 : 1
  const text = JSON.parse(entry.slice(LITERAL_AT, end + 1)) as string
  return entry.slice(0, WRAPPED_AT) + scriptSafe(text) + entry.slice(end + 2) // past `")`
}

/** The entry that gives the message entries after it, in the same script, their key. */
export function keyEntry (key: string): string {
  return '3,' + encodeMessage(key) + ','
}

/** Opens the script element of one write, e.g. `<script nonce="…">__fastifyComet([`. */
export function batchPrefix (nonce?: string): string {
  return scriptTag(nonce) + HELPER + '(['
}

/** Closes the script element of one write. */
export const BATCH_SUFFIX = ']);</script>'

/** One message's entry in a batch; `encoded` and `encodedId` come from encodeMessage and encodeId. */
export function messageEntry (encoded: string, encodedId: string | undefined): string {
  return encodedId === undefined ? '0,' + encoded + ',' : '1,' + encoded + ',' + encodedId + ','
}

const BEAT_ENTRY = '2,"beat",0,'

/**
 * One heartbeat: a script the shipped client sees (a `beat` control message), where whitespace
 * would reach the browser unseen. Built when written, so an idle stream keeps nothing for it.
 */
export function heartbeatScript (nonce: string | undefined): string {
  return batchPrefix(nonce) + BEAT_ENTRY + BATCH_SUFFIX
}

/** One control message's entry: for the shipped client, never delivered to the callback itself. */
export function controlEntry (type: string, detail: Record<string, unknown>): string {
  return '2,' + encodeMessage(type) + ',' + encodeMessage(detail) + ','
}
