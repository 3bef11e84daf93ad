// The @fastify/helmet configuration comet needs, merged with the application's, and the checks
// that tell whether a comet <script> will be allowed to run under the response's CSP.
import fastifyHelmet from '@fastify/helmet'
import type { FastifyHelmetOptions } from '@fastify/helmet'
import type { FastifyInstance, FastifyReply } from 'fastify'

type Directives = Record<string, Iterable<string> | null>

/**
 * Registers @fastify/helmet with our options, unless the application turned it off or registered
 * helmet itself (then its configuration applies, and its nonces when it makes them).
 */
export function registerHelmet (fastify: FastifyInstance, helmet: FastifyHelmetOptions | false | undefined): void {
  if (helmet === false) return
  if (fastify.hasPlugin('@fastify/helmet')) {
    fastify.log.info('fastify-comet: @fastify/helmet is already registered, so its configuration applies; ' +
      'comet scripts carry its CSP nonce (reply.cspNonce.script) when it sets one')
    return
  }
  // initialConfig.https is true, or an object such as { allowHTTP1: true }, on an HTTPS server.
  fastify.register(fastifyHelmet, helmetOptions(helmet, Boolean(fastify.initialConfig.https)))
}

/** Warns once per route when the response's CSP will make the browser refuse every comet script. */
export function warnIfBlocked (reply: FastifyReply, warnedRoutes: WeakSet<object>): void {
  const route = reply.request.routeOptions.config
  if (warnedRoutes.has(route) || !blocksInlineScripts(reply.getHeader('content-security-policy'))) return
  warnedRoutes.add(route)
  reply.log.warn('fastify-comet: this response has a Content-Security-Policy that blocks inline scripts and no ' +
    'CSP nonce, so the browser will refuse every comet message. Enable nonces (@fastify/helmet ' +
    'enableCSPNonces, the default when fastify-comet registers helmet) or allow the scripts in script-src.')
}

/**
 * Our helmet options: the iframe may be framed by its own origin only, the page may open
 * connections to its own origin (Play's advice for Comet), and every response gets CSP nonces so
 * comet scripts run under a strict script-src. The application's options win, directive by directive.
 */
export function helmetOptions (user: FastifyHelmetOptions | undefined, https: boolean): FastifyHelmetOptions {
  // helmet's option type is a union built to refuse aliases given together; the merge below keeps
  // whatever the application wrote, so it works on plain records.
  const { contentSecurityPolicy: userCsp, ...userRest } = (user ?? {}) as Record<string, unknown>
  const options: Record<string, unknown> = {
    enableCSPNonces: userCsp !== false, // a nonce means nothing without a policy
    frameguard: { action: 'sameorigin' },
    ...userRest
  }
  if (userCsp === false) {
    options.contentSecurityPolicy = false
    return options as FastifyHelmetOptions
  }
  const userCspOptions = (typeof userCsp === 'object' && userCsp !== null ? userCsp : {}) as { directives?: Directives, useDefaults?: boolean }
  const directives: Directives = {
    // Helmet's defaults are spelled out: @fastify/helmet adds the nonce to whatever script-src it
    // is given, so a list without script-src would leave a nonce-only policy that drops 'self'.
    // With useDefaults: false the application wants its own list: only script-src 'self' is kept.
    ...(userCspOptions.useDefaults === false ? { 'script-src': ["'self'"] } : fastifyHelmet.contentSecurityPolicy.getDefaultDirectives()),
    'connect-src': ["'self'"],
    'frame-ancestors': ["'self'"],
    // Over plain HTTP on any host but loopback, this directive makes browsers upgrade the iframe's
    // request to https, which fails, so the stream never starts. null removes helmet's default.
    'upgrade-insecure-requests': https ? [] : null
  }
  for (const [name, value] of Object.entries(userCspOptions.directives ?? {})) {
    directives[kebabCase(name)] = value as Directives[string]
  }
  options.contentSecurityPolicy = { ...userCspOptions, directives }
  return options as FastifyHelmetOptions
}

// helmet accepts scriptSrc and script-src alike, but throws when one policy names both.
function kebabCase (name: string): string {
  return name.replace(/[A-Z]/g, letter => `-${letter.toLowerCase()}`)
}

// Nonces are base64 or hex; anything else could break out of the attribute, so it is not used.
const NONCE = /^[\w+/=-]{1,256}$/

/** The script nonce of this reply, set by @fastify/helmet when CSP nonces are enabled. */
export function scriptNonce (reply: FastifyReply): string | undefined {
  const nonce = (reply as Partial<FastifyReply>).cspNonce?.script
  return typeof nonce === 'string' && NONCE.test(nonce) ? nonce : undefined
}

/**
 * Whether the response's Content-Security-Policy forbids inline <script> elements that carry no
 * nonce: script-src-elem, else script-src, else default-src, without 'unsafe-inline' (or with a
 * nonce, hash or 'strict-dynamic', which make browsers ignore 'unsafe-inline').
 */
export function blocksInlineScripts (header: number | string | string[] | undefined): boolean {
  if (header === undefined) return false
  // Several policies may come as several headers or comma-separated in one; each must allow it.
  const policies = (Array.isArray(header) ? header : [String(header)]).flatMap(value => value.split(','))
  return policies.some(policy => {
    const directives = new Map<string, string[]>()
    for (const part of policy.split(';')) {
      const [name, ...sources] = part.trim().toLowerCase().split(/\s+/)
      if (name !== '' && !directives.has(name)) directives.set(name, sources)
    }
    const sources = directives.get('script-src-elem') ?? directives.get('script-src') ?? directives.get('default-src')
    if (sources === undefined) return false
    const inlineIgnored = sources.some(source => /^'(nonce-|sha256-|sha384-|sha512-|strict-dynamic)/.test(source))
    return inlineIgnored || !sources.includes("'unsafe-inline'")
  })
}
