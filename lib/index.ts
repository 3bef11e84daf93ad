// The plugin: validates options once, then decorates the reply. Wiring only; the stream itself
// lives in stream.ts.
import fp from 'fastify-plugin'
import type { FastifyPluginCallback, FastifyReply } from 'fastify'
import type { FastifyCometOptions } from '../types/index.js'
import { FST_COMET_REPLY_SENT } from './errors.js'
import { resolvePluginOptions, resolveReplyOptions } from './options.js'
import { openSource } from './source.js'
import { CometStream } from './stream.js'

const plugin: FastifyPluginCallback<FastifyCometOptions> = (fastify, options, done) => {
  const defaults = resolvePluginOptions(options)

  const comet: FastifyReply['comet'] = function (this: FastifyReply, source, callback) {
    // Every check runs before anything is written, so Fastify's error handler can still answer.
    const settings = resolveReplyOptions(defaults, callback)
    if (this.sent) throw new FST_COMET_REPLY_SENT()
    const opened = openSource(source)
    return new CometStream(this, settings, opened).done
  }
  fastify.decorateReply('comet', comet)
  done()
}

const fastifyComet = fp(plugin, { fastify: '5.x', name: 'fastify-comet' })

export { fastifyComet, fastifyComet as default }

// The CommonJS shape Fastify plugins share: require() gives the plugin itself. Node reads the named
// exports of these assignments statically, so `import fastifyComet, { fastifyComet }` works from ESM.
module.exports = fastifyComet
module.exports.default = fastifyComet
module.exports.fastifyComet = fastifyComet
