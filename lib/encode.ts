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
  'srcdoc', 'setHTMLUnsafe', 'parseHTMLUnsafe', 'navigate'
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
  if (typeof message === 'string') {
    json = JSON.stringify(message)
  } else if (message instanceof Uint8Array) {
    json = JSON.stringify(Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('utf8'))
  } else {
    try {
      json = JSON.stringify(message)
    } catch (err) {
      // BigInt, circular structures, a throwing toJSON
      throw new FST_COMET_UNSERIALIZABLE_MESSAGE(describeValue(message), (err as Error).message, { cause: err })
    }
    if (json === undefined) {
      throw new FST_COMET_UNSERIALIZABLE_MESSAGE(describeValue(message), 'JSON has no representation for it')
    }
    // In a JavaScript object literal, a "__proto__" key sets the prototype instead of making an own
    // property, so such a message is sent as JSON text for the browser's JSON.parse to read.
    if (json.includes('"__proto__":')) json = `JSON.parse(${JSON.stringify(json)})`
  }
  return HAS_SCRIPT_UNSAFE.test(json) ? json.replace(SCRIPT_UNSAFE, escapeUnsafe) : json
}

/** The id that `idOf` gives a message, encoded like a message; undefined without an id. */
export function encodeId<T> (idOf: ((message: T) => unknown) | undefined, message: T): string | undefined {
  if (idOf === undefined) return undefined
  const id = idOf(message)
  if (id === undefined) return undefined
  if (typeof id !== 'string') throw new FST_COMET_INVALID_MESSAGE_ID(typeof id)
  return encodeMessage(id)
}

/** Opens one script element and the call, e.g. `<script nonce="…">parent.cometMessage(`. */
export function scriptPrefix (callback: string, nonce?: string): string {
  return scriptOpen(nonce) + callback + '('
}

function scriptOpen (nonce: string | undefined): string {
  return nonce === undefined ? '<script>' : `<script nonce="${nonce}">`
}

/**
 * A control message: something the stream tells the shipped client that is not a message (a
 * reset, for now). It calls `callback.cometControl(type, detail)` only when the page's callback
 * has that method, which the shipped client sets; any other page never sees it as data.
 */
export function controlScript (callback: string, nonce: string | undefined, type: string, detail: Record<string, unknown>): string {
  return scriptOpen(nonce) +
    `(function(){var f;try{f=${callback}}catch(e){return}` +
    `if(typeof f==="function"&&typeof f.cometControl==="function")f.cometControl(${encodeMessage(type)},${encodeMessage(detail)})})();` +
    '</script>'
}

export const SCRIPT_SUFFIX = ');</script>'

/** The first chunk: whitespace that makes browsers start rendering at once, then the document. */
export function paddingChunk (bytes: number): string {
  return ' '.repeat(bytes) + '<html><body>'
}
