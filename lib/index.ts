// The plugin: validates options once, then wires everything up: helmet, the reply decorator, the
// shutdown hook and the optional client script route. The stream itself lives in stream.ts.
import fp from 'fastify-plugin'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply } from 'fastify'
import type { CometChannelOptions, CometPushOptions, CometReplyOptions, CometSource, CometSources, FastifyCometOptions } from '../types/index.js'
import { FST_COMET_INVALID_OPTION, FST_COMET_NOT_FRAMED, FST_COMET_REPLY_SENT, FST_COMET_TOO_MANY_STREAMS } from './errors.js'
import { keyedContexts, singleContext } from './last-event-id.js'
import { MultiplexFeed } from './multiplex.js'
import { pollOf } from './poll.js'
import { resolvePluginOptions, resolveReplyOptions } from './options.js'
import { registerHelmet, scriptNonce, warnIfBlocked } from './security.js'
import { abandonSource, isSourceMap, openSource, sourceKind, unopenedSource } from './source.js'
import { responseHead } from './response-head.js'
import { CometStream } from './stream.js'
import { OpenStreams } from './open-streams.js'
import { CometChannel } from './channel.js'
import { LiveChannels } from './live-channels.js'
import { CometPush } from './push.js'
import { NamedChannels } from './named-channels.js'
import type { CometFeed } from './feed.js'

const plugin: FastifyPluginAsync<FastifyCometOptions> = async (fastify, options) => {
  const { defaults, clientPath, maxStreams, retryAfter, broker } = resolvePluginOptions(options)
  registerHelmet(fastify, options.helmet)
  // Routes already told that their CSP blocks comet scripts (keyed by the route's config object).
  const warnedRoutes = new WeakSet<object>()
  const streams = new OpenStreams(maxStreams)
  const live = new LiveChannels()

  const comet = function (this: FastifyReply, source: CometSource | CometSources, callback: string | CometReplyOptions): Promise<void> {
    // Every check runs before anything is written, so Fastify's error handler can still answer,
    // and a refused source is always released (a push source's signal aborts).
    let feed: CometFeed | undefined
    let stream: CometStream
    try {
      const settings = resolveReplyOptions(defaults, callback)
      if (this.sent) throw new FST_COMET_REPLY_SENT()
      // A top-level page has itself as its parent: a link to the comet URL would run the callback
      // path against the comet document, with the visitor's cookies.
      if (this.request.headers['sec-fetch-dest'] === 'document') throw new FST_COMET_NOT_FRAMED()
      const poll = pollOf(this.request, settings.pollTimeout)
      const head = responseHead(this, poll?.json)
      if (!streams.admit()) {
        // On the reply rather than the error, so that an application's own error handler sends it too.
        this.header('retry-after', String(retryAfter))
        throw new FST_COMET_TOO_MANY_STREAMS(maxStreams)
      }
      // During shutdown no source runs: the stream ends as soon as it has started.
      if (streams.closing) feed = unopenedSource(source)
      else if (isSourceMap(source)) feed = new MultiplexFeed(source, keyedContexts(this.request), settings.id)
      else feed = openSource(source as CometSource, singleContext(this.request), settings.id)
      // A channel or push source gives its messages their ids itself.
      if (settings.id !== undefined && feed.maxQueue !== Infinity) {
        throw new FST_COMET_INVALID_OPTION('id', 'set it on the channel or push source, which encodes each message once')
      }
      const nonce = scriptNonce(this)
      if (nonce === undefined && poll?.json !== true) warnIfBlocked(this, warnedRoutes) // a JSON poll runs no script
      stream = new CometStream(this, feed, streams)
      this.log.debug({ callback: settings.callback, source: sourceKind(source) }, 'comet stream opened')
      stream.start(this, head, settings, nonce, poll)
    } catch (err) {
      if (feed === undefined) abandonSource(source)
      else feed.stop()
      throw err
    }
    return stream.done
  }
  fastify.decorateReply('comet', comet)
  const brokerConnection = await broker?.connect(fastify.log)
  const channels = new NamedChannels(brokerConnection, live)
  fastify.decorate('comet', {
    channel: (options?: CometChannelOptions) => channels.channel(options),
    push: <T>(options?: CometPushOptions<T>) => new CometPush<T>(options),
    stats: () => ({ ...streams.stats(), channels: live.stats() })
  } as FastifyInstance['comet'])

  // Fastify waits for in-flight responses before it closes, and a stream never finishes by
  // itself: end them all cleanly so that close() settles and every source's finally runs.
  fastify.addHook('preClose', async () => {
    streams.shutdown()
  })
  if (brokerConnection !== undefined) fastify.addHook('onClose', async () => brokerConnection.close())

  if (clientPath !== undefined) serveClient(fastify, clientPath)
}

// The browser client ships in the package (client/comet-client.js); read once, served as is.
function serveClient (fastify: FastifyInstance, path: string): void {
  const script = readFileSync(join(__dirname, '..', 'client', 'comet-client.js'))
  fastify.get(path, (request, reply) => {
    reply
      .type('text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(script)
  })
}

const fastifyComet = fp(plugin, { fastify: '5.x', name: 'fastify-comet' })

export { fastifyComet, fastifyComet as default }

// The CommonJS shape Fastify plugins share: require() gives the plugin itself. Node reads the named
// exports of these assignments statically, so `import fastifyComet, { fastifyComet, CometChannel }`
// works from ESM. (The classes are not in the TypeScript export list above: it would compile to
// getters on an exports object that this assignment replaces.)
module.exports = fastifyComet
module.exports.default = fastifyComet
module.exports.fastifyComet = fastifyComet
module.exports.CometChannel = CometChannel
module.exports.CometPush = CometPush
