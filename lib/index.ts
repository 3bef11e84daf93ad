// The plugin: validates options once, then decorates the reply. Wiring only; the stream itself
// lives in stream.ts.
import fp from 'fastify-plugin'
import fastifyHelmet from '@fastify/helmet'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify'
import type { FastifyCometOptions } from '../types/index.js'
import { FST_COMET_REPLY_SENT } from './errors.js'
import { resolvePluginOptions, resolveReplyOptions } from './options.js'
import { openSource } from './source.js'
import { blocksInlineScripts, helmetOptions, scriptNonce } from './security.js'
import { CometStream } from './stream.js'

const plugin: FastifyPluginAsync<FastifyCometOptions> = async (fastify, options) => {
  const defaults = resolvePluginOptions(options)
  registerHelmet(fastify, options.helmet)
  // Routes already told that their CSP blocks comet scripts (keyed by the route's config object).
  const warnedRoutes = new WeakSet<object>()

  const comet: FastifyReply['comet'] = function (this: FastifyReply, source, callback) {
    // Every check runs before anything is written, so Fastify's error handler can still answer.
    const settings = resolveReplyOptions(defaults, callback)
    if (this.sent) throw new FST_COMET_REPLY_SENT()
    const opened = openSource(source)
    const nonce = scriptNonce(this)
    if (nonce === undefined) warnIfBlocked(this, warnedRoutes)
    return new CometStream(this, settings, opened, nonce).done
  }
  fastify.decorateReply('comet', comet)
}

function registerHelmet (fastify: FastifyInstance, helmet: FastifyCometOptions['helmet']): void {
  if (helmet === false) return
  if (fastify.hasPlugin('@fastify/helmet')) {
    fastify.log.info('fastify-comet: @fastify/helmet is already registered, so its configuration applies; ' +
      'comet scripts carry its CSP nonce (reply.cspNonce.script) when it sets one')
    return
  }
  fastify.register(fastifyHelmet, helmetOptions(helmet, fastify.initialConfig.https === true))
}

function warnIfBlocked (reply: FastifyReply, warnedRoutes: WeakSet<object>): void {
  const route = reply.request.routeOptions.config
  if (warnedRoutes.has(route) || !blocksInlineScripts(reply.getHeader('content-security-policy'))) return
  warnedRoutes.add(route)
  reply.log.warn('fastify-comet: this response has a Content-Security-Policy that blocks inline scripts and no ' +
    'CSP nonce, so the browser will refuse every comet message. Enable nonces (@fastify/helmet ' +
    'enableCSPNonces, the default when fastify-comet registers helmet) or allow the scripts in script-src.')
}

const fastifyComet = fp(plugin, { fastify: '5.x', name: 'fastify-comet' })

export { fastifyComet, fastifyComet as default }

// The CommonJS shape Fastify plugins share: require() gives the plugin itself. Node reads the named
// exports of these assignments statically, so `import fastifyComet, { fastifyComet }` works from ESM.
module.exports = fastifyComet
module.exports.default = fastifyComet
module.exports.fastifyComet = fastifyComet
