// Plugin options are checked at register, per-call options at each reply.comet(), and a rejected
// call leaves the reply to Fastify's error handler: nothing of the comet document is written.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'
import type { LightMyRequestResponse } from 'fastify'
import type { FastifyCometOptions, CometReplyOptions } from '../types/index.js'
import { build, messages, withoutHelper } from './helpers.js'

/** The body without CSP nonces, which change on every response. */
function plain (body: string): string {
  return withoutHelper(body).replace(/<script nonce="[^"]*">/g, '<script>')
}

/** A Fastify error answer: JSON, with the code, and no trace of the comet document. */
function assertErrorReply (t: tap.Test, res: LightMyRequestResponse, statusCode: number, code: string): void {
  t.equal(res.statusCode, statusCode, 'status')
  t.match(res.headers['content-type'], /^application\/json/, 'a JSON error body')
  t.notOk(res.body.includes('<html>'), 'no comet document')
  t.notOk(res.body.includes('<script'), 'no script')
  t.match(res.json(), { statusCode, code }, 'Fastify\'s error body')
}

// Each case registers the plugin in a child process: if a bad option escaped as an uncaught
// exception instead of rejecting register(), it would take this whole test file down with it.
const REGISTER_CHILD = `
const Fastify = require('fastify')
const fastifyComet = require(${JSON.stringify(resolve(__dirname, '../lib/index.ts'))})
const cases = JSON.parse(process.argv[1]).map(([name, json]) => [name, json === 'array' ? [1, 2] : json])
cases.push(['padding NaN', { padding: NaN }], ['padding Infinity', { padding: Infinity }])
;(async () => {
  const results = {}
  for (const [name, options] of cases) {
    const app = Fastify()
    results[name] = await new Promise(resolve => {
      const onUncaught = err => resolve({ outcome: 'uncaught exception', code: err.code, message: err.message })
      process.once('uncaughtException', onUncaught)
      app.register(fastifyComet, options).then(
        () => resolve({ outcome: 'registered' }),
        err => resolve({ outcome: 'rejected', code: err.code, statusCode: err.statusCode, message: err.message })
      ).finally(() => process.removeListener('uncaughtException', onUncaught))
    })
  }
  process.stdout.write(JSON.stringify(results))
  process.exit(0)
})()
`

function registerInChild (cases: Array<[string, unknown]>): Record<string, { outcome: string, code?: string, statusCode?: number, message?: string }> {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  const execArgv = process.execArgv.filter(arg => !arg.includes('processinfo'))
  const out = execFileSync(process.execPath, [...execArgv, '-e', REGISTER_CHILD, JSON.stringify(cases)], {
    cwd: resolve(__dirname, '..'), env, encoding: 'utf8'
  })
  return JSON.parse(out)
}

t.test('invalid plugin options reject register with FST_COMET_INVALID_OPTION', async t => {
  const results = registerInChild([
    ['padding -1', { padding: -1 }],
    ['padding 1.5', { padding: 1.5 }],
    ['padding as a string', { padding: '10' }],
    ['padding 65537', { padding: 65537 }],
    ['padding null', { padding: null }],
    ['a misspelt key', { paddin: 10 }],
    ['an array', 'array'],
    ['valid padding (control)', { padding: 0 }]
  ])
  t.same(results['valid padding (control)'], { outcome: 'registered' }, 'the child can register the plugin')
  delete results['valid padding (control)']
  t.equal(Object.keys(results).length, 9)
  for (const [name, result] of Object.entries(results)) {
    t.match(result, { outcome: 'rejected', code: 'FST_COMET_INVALID_OPTION', statusCode: 500 }, name)
  }
  t.match(results['a misspelt key'], { message: /"paddin"/ }, 'the unknown-key error names the key')
})

t.test('maxStreams and retryAfter: invalid values reject register, valid ones register', async t => {
  const results = registerInChild([
    ['maxStreams 0', { maxStreams: 0 }],
    ['maxStreams -1', { maxStreams: -1 }],
    ['maxStreams 1.5', { maxStreams: 1.5 }],
    ['maxStreams as a string', { maxStreams: '100' }],
    ['maxStreams null', { maxStreams: null }],
    ['retryAfter -1', { retryAfter: -1 }],
    ['retryAfter 0.5', { retryAfter: 0.5 }],
    ['retryAfter 86401', { retryAfter: 86401 }],
    ['retryAfter as a string', { retryAfter: '5' }],
    ['maxStreams 1 (valid)', { maxStreams: 1 }],
    ['maxStreams with retryAfter 0 (valid)', { maxStreams: 10, retryAfter: 0 }],
    ['retryAfter 86400 (valid)', { retryAfter: 86400 }]
  ])
  // The child adds two padding cases of its own; they are checked above.
  const ours = Object.entries(results).filter(([name]) => !name.startsWith('padding'))
  t.equal(ours.length, 12, 'every case ran')
  for (const [name, result] of ours) {
    if (name.endsWith('(valid)')) t.same(result, { outcome: 'registered' }, name)
    else t.match(result, { outcome: 'rejected', code: 'FST_COMET_INVALID_OPTION', statusCode: 500, message: new RegExp(`"${name.split(' ')[0]}"`) }, name)
  }
})

// JSON cannot carry Infinity to the child, so this one registers here.

t.test('maxStreams: Infinity is the default, spelt out', async t => {
  const { app } = await build(t, { maxStreams: Infinity, padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  t.equal((await app.inject('/comet')).statusCode, 200)
})

t.test('valid paddings: exactly N spaces then <html><body>', async t => {
  for (const [label, options, bytes] of [
    ['padding 0', { padding: 0 }, 0],
    ['padding 65536', { padding: 65536 }, 65536],
    ['default', {}, 5120],
    ['padding undefined', { padding: undefined }, 5120]
  ] as Array<[string, FastifyCometOptions, number]>) {
    const { app } = await build(t, options)
    app.get('/comet', (request, reply) => reply.comet(['x'], 'cb'))
    const res = await app.inject('/comet')
    t.equal(res.statusCode, 200, `${label}: status`)
    t.equal(res.body.slice(0, bytes + 12), ' '.repeat(bytes) + '<html><body>', `${label}: first chunk`)
    t.equal(plain(res.body).slice(bytes + 12), '<script>__fastifyComet([0,"x",]);</script>', `${label}: then the script`)
  }
})

t.test('per-call padding overrides the plugin default, and falls back to it', async t => {
  const { app } = await build(t, { padding: 100 })
  app.get('/zero', (request, reply) => reply.comet(['a'], { callback: 'cb', padding: 0 }))
  app.get('/more', (request, reply) => reply.comet(['a'], { callback: 'cb', padding: 7 }))
  app.get('/default', (request, reply) => reply.comet(['a'], { callback: 'cb' }))
  app.get('/string', (request, reply) => reply.comet(['a'], 'cb'))
  t.equal(plain((await app.inject('/zero')).body), '<html><body><script>__fastifyComet([0,"a",]);</script>')
  t.equal(plain((await app.inject('/more')).body), ' '.repeat(7) + '<html><body><script>__fastifyComet([0,"a",]);</script>')
  t.equal(plain((await app.inject('/default')).body), ' '.repeat(100) + '<html><body><script>__fastifyComet([0,"a",]);</script>')
  t.equal(plain((await app.inject('/string')).body), ' '.repeat(100) + '<html><body><script>__fastifyComet([0,"a",]);</script>')
})

t.test('invalid per-call options answer with an error and write nothing', async t => {
  const { app } = await build(t, { padding: 0 })
  const cases: Array<[string, unknown, number, string]> = [
    ['padding -1', { callback: 'cb', padding: -1 }, 500, 'FST_COMET_INVALID_OPTION'],
    ['padding 1.5', { callback: 'cb', padding: 1.5 }, 500, 'FST_COMET_INVALID_OPTION'],
    ['padding as a string', { callback: 'cb', padding: '10' }, 500, 'FST_COMET_INVALID_OPTION'],
    ['padding 65537', { callback: 'cb', padding: 65537 }, 500, 'FST_COMET_INVALID_OPTION'],
    ['an unknown key', { callback: 'cb', paddin: 0 }, 500, 'FST_COMET_INVALID_OPTION'],
    ['no options at all', undefined, 500, 'FST_COMET_INVALID_OPTION'],
    ['null options', null, 500, 'FST_COMET_INVALID_OPTION'],
    ['an array', ['cb'], 500, 'FST_COMET_INVALID_OPTION'],
    // the callback is checked by assertCallback, which answers 400 whatever its origin
    ['a missing callback', { padding: 0 }, 400, 'FST_COMET_INVALID_CALLBACK'],
    ['a bad callback in the options', { callback: 'a;b' }, 400, 'FST_COMET_INVALID_CALLBACK'],
    ['a bad callback string', 'alert(1)//', 400, 'FST_COMET_INVALID_CALLBACK']
  ]
  const pulled = new Set<string>()
  cases.forEach(([label, options], index) => {
    function * source (): Generator<string> {
      pulled.add(label)
      yield 'never'
    }
    // A plain (non-async) handler: the throw reaches Fastify synchronously.
    app.get(`/case${index}`, (request, reply) => reply.comet(source(), options as CometReplyOptions))
  })
  for (const [index, [label, , statusCode, code]] of cases.entries()) {
    const res = await app.inject(`/case${index}`)
    t.test(label, async t => {
      assertErrorReply(t, res, statusCode, code)
      t.notOk(res.body.includes('never'), 'no message')
      t.notOk(pulled.has(label), 'the source was never pulled')
    })
  }
})

t.test('a bad callback from the query string answers 400 and is not reflected', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', async (request, reply) => {
    await reply.comet(['secret'], (request.query as { callback: string }).callback)
  })
  for (const input of ['alert(1)//', '</script><script>alert(1)</script>', 'document.write', 'x<img src=y>']) {
    const res = await app.inject({ url: '/comet', query: { callback: input } })
    assertErrorReply(t, res, 400, 'FST_COMET_INVALID_CALLBACK')
    t.notOk(res.body.includes(input), `${input} is not in the body`)
    t.notOk(res.body.includes('alert'), 'nothing of the input is in the body')
    t.notOk(res.body.includes('secret'), 'no message was sent')
  }
  const raw = await app.inject('/comet?callback=alert(1)//')
  assertErrorReply(t, raw, 400, 'FST_COMET_INVALID_CALLBACK')
  t.notOk(raw.body.includes('alert(1)'))

  const good = await app.inject({ url: '/comet', query: { callback: 'parent.onMessage' } })
  t.equal(good.statusCode, 200)
  t.same(messages(good.body, 'parent.onMessage'), ['secret'], 'a valid query callback works')
})

t.test('calling reply.comet twice: the second throws FST_COMET_REPLY_SENT, the first completes', async t => {
  const { app } = await build(t, { padding: 0 })
  const caught: unknown[] = []
  let secondPulled = false
  app.get('/comet', async (request, reply) => {
    async function * first (): AsyncGenerator<string> {
      yield 'one'
      await new Promise(setImmediate)
      yield 'two'
    }
    const streaming = reply.comet(first(), 'cb')
    let returned: unknown
    try {
      returned = reply.comet((function * () { secondPulled = true; yield 'other' })(), 'cb')
    } catch (err) {
      caught.push(err)
    }
    t.equal(returned, undefined, 'the second call returned nothing: it threw synchronously')
    await streaming
  })
  const res = await app.inject('/comet')
  t.equal(caught.length, 1)
  t.match(caught[0], { code: 'FST_COMET_REPLY_SENT', statusCode: 500 })
  t.equal(res.statusCode, 200)
  t.match(plain(res.body), /^<html><body><script>__fastifyComet\(\[0,"one",[\s\S]*0,"two",\]\);<\/script>$/)
  t.same(messages(res.body, 'cb'), ['one', 'two'])
  t.notOk(secondPulled, 'the second source was never pulled')
})

t.test('reply.comet after reply.send throws FST_COMET_REPLY_SENT', async t => {
  const { app } = await build(t, { padding: 0 })
  const caught: unknown[] = []
  app.get('/comet', (request, reply) => {
    reply.send('plain')
    try {
      reply.comet(['x'], 'cb').catch(() => {})
    } catch (err) {
      caught.push(err)
    }
  })
  const res = await app.inject('/comet')
  t.equal(res.body, 'plain')
  t.match(caught, [{ code: 'FST_COMET_REPLY_SENT' }])
})
