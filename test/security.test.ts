// The security headers the plugin sets up through @fastify/helmet, how they merge with the
// application's, and the CSP nonce every comet script carries.
import t from 'tap'
import Fastify from 'fastify'
import fastifyHelmet from '@fastify/helmet'
import fastifyComet from '../lib/index.js'
import { blocksInlineScripts, helmetOptions } from '../lib/security.js'
import { build, recordLogs, replay, withoutHelper } from './helpers.js'

function directives (header: unknown): Map<string, string[]> {
  const map = new Map<string, string[]>()
  for (const part of String(header).split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/)
    if (name !== '') map.set(name, sources)
  }
  return map
}

const nonceOf = (html: string): string[] => [...html.matchAll(/<script nonce="([^"]+)">/g)].map(match => match[1])

t.test('defaults: same-origin framing, connect-src and frame-ancestors self, nonced scripts', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(['a', 'b'], 'cb'))
  const res = await app.inject('/comet')
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  const csp = directives(res.headers['content-security-policy'])
  t.same(csp.get('connect-src'), ["'self'"])
  t.same(csp.get('frame-ancestors'), ["'self'"])
  t.same(csp.get('default-src'), ["'self'"], "helmet's other defaults are kept")
  t.same(csp.get('object-src'), ["'none'"])
  const scriptSrc = csp.get('script-src') ?? []
  t.equal(scriptSrc[0], "'self'", "script-src keeps 'self' for the page's own scripts")
  t.match(scriptSrc[1], /^'nonce-[0-9a-f]{32}'$/)
  t.notOk(scriptSrc.includes("'unsafe-inline'"))
  t.notOk(csp.has('upgrade-insecure-requests'), 'not on a plain-HTTP server')
  const nonces = nonceOf(res.body)
  t.equal(nonces.length, 2)
  t.ok(nonces.every(nonce => `'nonce-${nonce}'` === scriptSrc[1]), "every script carries the response's nonce")
  t.same(replay(res.body, 'cb').map(args => args[0]), ['a', 'b'])
})

t.test('every request gets its own nonce', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  const [first, second] = await Promise.all([app.inject('/comet'), app.inject('/comet')])
  t.not(nonceOf(first.body)[0], nonceOf(second.body)[0])
})

t.test("the application's helmet options win, directive by directive", async t => {
  const { app } = await build(t, {
    padding: 0,
    helmet: {
      frameguard: { action: 'deny' },
      contentSecurityPolicy: { directives: { imgSrc: ["'self'", 'https://img.example'], 'frame-ancestors': ["'none'"] } }
    }
  })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  const res = await app.inject('/comet')
  t.equal(res.headers['x-frame-options'], 'DENY')
  const csp = directives(res.headers['content-security-policy'])
  t.same(csp.get('img-src'), ["'self'", 'https://img.example'], 'camelCase names are accepted')
  t.same(csp.get('frame-ancestors'), ["'none'"])
  t.same(csp.get('connect-src'), ["'self'"], 'ours stay where the application says nothing')
  t.equal(csp.get('script-src')?.[0], "'self'", "a directive list without script-src does not drop 'self'")
  t.equal(nonceOf(res.body).length, 2, 'the helper and the one batch')
})

t.test('an explicit script-src is the application\'s choice, and still gets the nonce', async t => {
  const { app } = await build(t, { padding: 0, helmet: { contentSecurityPolicy: { directives: { scriptSrc: ['https://cdn.example'] } } } })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  const res = await app.inject('/comet')
  const scriptSrc = directives(res.headers['content-security-policy']).get('script-src') ?? []
  t.equal(scriptSrc[0], 'https://cdn.example')
  t.match(scriptSrc[1], /^'nonce-/)
  t.equal(scriptSrc.length, 2)
})

t.test('upgrade-insecure-requests is kept when the application asks for it', async t => {
  const { app } = await build(t, { padding: 0, helmet: { contentSecurityPolicy: { directives: { upgradeInsecureRequests: [] } } } })
  app.get('/', async () => 'ok')
  const res = await app.inject('/')
  t.ok(directives(res.headers['content-security-policy']).has('upgrade-insecure-requests'))
})

t.test('helmetOptions keeps upgrade-insecure-requests on an HTTPS server', async t => {
  const https = helmetOptions(undefined, true) as { contentSecurityPolicy: { directives: Record<string, unknown> } }
  t.same(https.contentSecurityPolicy.directives['upgrade-insecure-requests'], [])
  const http = helmetOptions(undefined, false) as { contentSecurityPolicy: { directives: Record<string, unknown> } }
  t.equal(http.contentSecurityPolicy.directives['upgrade-insecure-requests'], null)
})

t.test('contentSecurityPolicy: false turns the policy off and leaves the rest', async t => {
  const { app, logs } = await build(t, { padding: 0, helmet: { contentSecurityPolicy: false } })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  const res = await app.inject('/comet')
  t.equal(res.headers['content-security-policy'], undefined)
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  t.equal(withoutHelper(res.body), '<html><body><script>__fastifyComet([0,"a",]);</script>', 'no nonce without a policy')
  t.notOk(logs.some(line => line.level === 40))
})

t.test('helmet: false leaves security headers to the application', async t => {
  const { app } = await build(t, { padding: 0, helmet: false })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  const res = await app.inject('/comet')
  t.equal(res.headers['content-security-policy'], undefined)
  t.equal(res.headers['x-frame-options'], undefined)
  t.equal(withoutHelper(res.body), '<html><body><script>__fastifyComet([0,"a",]);</script>')
  t.notOk(app.hasPlugin('@fastify/helmet'))
})

t.test('an invalid helmet option fails at register', async t => {
  await t.rejects(build(t, { helmet: 'on' as never }), { code: 'FST_COMET_INVALID_OPTION' })
})

t.test('helmet registered by the application first is used, not registered twice', async t => {
  const { logs, logger } = recordLogs()
  const app = Fastify({ logger })
  await app.register(fastifyHelmet, { enableCSPNonces: true })
  await app.register(fastifyComet, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  const res = await app.inject('/comet')
  const header = res.headers['content-security-policy']
  t.type(header, 'string', 'one policy header, not two')
  t.notOk(directives(header).has('connect-src'), "the application's own configuration applies")
  t.equal(res.headers['x-frame-options'], 'SAMEORIGIN')
  const [nonce] = nonceOf(res.body)
  t.ok(directives(header).get('script-src')?.includes(`'nonce-${nonce}'`), "scripts carry the application's helmet nonce")
  t.ok(logs.some(line => line.level === 30 && /already registered/.test(line.msg)), 'what was found is logged at info')
  await app.close()
})

t.test('a policy that blocks inline scripts without a nonce is reported once per route', async t => {
  const { logs, logger } = recordLogs()
  const app = Fastify({ logger })
  await app.register(fastifyHelmet) // no nonces
  await app.register(fastifyComet, { padding: 0 })
  app.get('/one', (request, reply) => reply.comet(['a'], 'cb'))
  app.get('/two', (request, reply) => reply.comet(['a'], 'cb'))
  app.get('/data', (request, reply) => reply.comet(['a'], 'cb'))
  for (const url of ['/one', '/one', '/two', '/two']) {
    const res = await app.inject(url)
    t.equal(withoutHelper(res.body), '<html><body><script>__fastifyComet([0,"a",]);</script>')
  }
  const warnings = logs.filter(line => line.level === 40)
  t.equal(warnings.length, 2, 'one warning for each route')
  t.match(warnings[0].msg, /blocks inline scripts.*nonce/)
  t.same((await app.inject({ url: '/data?transport=poll', headers: { 'comet-format': 'json' } })).json(), [0, 'a', 2, 'reconnect', { delay: 'backoff' }])
  t.equal(logs.filter(line => line.level === 40).length, 2, 'a JSON poll runs no script: nothing to warn of')
  await app.close()
})

t.test('route-level helmet configuration keeps working', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/bare', { helmet: false }, (request, reply) => reply.comet(['a'], 'cb'))
  app.get('/deny', { helmet: { frameguard: { action: 'deny' } } }, (request, reply) => reply.comet(['a'], 'cb'))
  const bare = await app.inject('/bare')
  t.equal(bare.headers['content-security-policy'], undefined)
  t.equal(withoutHelper(bare.body), '<html><body><script>__fastifyComet([0,"a",]);</script>')
  const deny = await app.inject('/deny')
  t.equal(deny.headers['x-frame-options'], 'DENY')
  t.equal(nonceOf(deny.body).length, 2)
})

t.test('a nonce that could break out of its attribute is not used', async t => {
  const { app } = await build(t, { padding: 0, helmet: false })
  app.addHook('onRequest', async (request, reply) => { reply.cspNonce = { script: '"><script>alert(1)</script>', style: 'x' } })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  const res = await app.inject('/comet')
  t.equal(withoutHelper(res.body), '<html><body><script>__fastifyComet([0,"a",]);</script>')
})

t.test('blocksInlineScripts reads script-src-elem, script-src, then default-src', async t => {
  t.equal(blocksInlineScripts(undefined), false)
  t.equal(blocksInlineScripts("img-src 'self'"), false, 'no script directive at all')
  t.equal(blocksInlineScripts("default-src 'self'"), true)
  t.equal(blocksInlineScripts("default-src 'self' 'unsafe-inline'"), false)
  t.equal(blocksInlineScripts("script-src 'self' 'unsafe-inline'; default-src 'none'"), false)
  t.equal(blocksInlineScripts("script-src 'unsafe-inline' 'nonce-abc'"), true, 'a nonce disables unsafe-inline')
  t.equal(blocksInlineScripts("script-src 'unsafe-inline' 'sha256-abc'"), true)
  t.equal(blocksInlineScripts("script-src 'unsafe-inline' 'strict-dynamic'"), true)
  t.equal(blocksInlineScripts("script-src-elem 'unsafe-inline'; script-src 'self'"), false, 'script-src-elem wins')
  t.equal(blocksInlineScripts("script-src 'unsafe-inline', script-src 'self'"), true, 'every policy must allow it')
  t.equal(blocksInlineScripts(["script-src 'unsafe-inline'", "default-src 'self'"]), true)
})

t.test("useDefaults: false gives the application's own list, plus what comet needs", async t => {
  const { app } = await build(t, { padding: 0, helmet: { contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"] } } } })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  const res = await app.inject('/comet')
  const csp = directives(res.headers['content-security-policy'])
  t.same(csp.get('default-src'), ["'none'"])
  t.same(csp.get('connect-src'), ["'self'"])
  t.equal(csp.get('script-src')?.[0], "'self'")
  t.notOk(csp.has('object-src'), "helmet's other defaults are left out")
  t.equal(nonceOf(res.body).length, 2, 'the helper and the one batch')
})
