'use strict'

// The servers of the polling benchmark (bench/polling.js), one per call to start(spec), in a child
// process (server-child.js with spec.module = 'polling-servers.js'). Each serves a feed of
// messages { n, t, text } (t: process.hrtime in µs at the publish, redis-servers.js's
// stampedMessage) that the client drives with the `publish` command, at a steady rate.
//   fastify-comet   the plugin with its defaults, a channel with history at GET /events: streamed,
//                   or polled with ?transport=poll&lastEventId=; and the same with helmet: false
//   socket.io       socket.io with its defaults, long-polling only (transports: ['polling'])

const path = require('node:path')
const http = require('node:http')
const { once } = require('node:events')
const { COMET_DIST, startFastify } = require('./servers.js')
const { publishSteady } = require('./redis-servers.js')

const CALLBACK = 'parent.cb'

function cometServer (options) {
  return (spec, state) => startFastify(async app => {
    await app.register(require(path.join(COMET_DIST, 'index.js')), options)
    const channel = app.comet.channel({ history: 1000 })
    state.subscribers = () => channel.size
    state.publish = (message) => channel.publish(message)
    app.get('/events', (request, reply) => reply.comet(channel, CALLBACK))
  })
}

const COMPETITORS = {
  'fastify-comet': cometServer({}),
  // without the security headers helmet adds to each response (about 900 bytes of a poll's head)
  'fastify-comet (helmet: false)': cometServer({ helmet: false }),

  'socket.io': async (spec, state) => {
    const { Server } = require('socket.io')
    const server = http.createServer()
    const io = new Server(server, { transports: ['polling'], serveClient: false })
    state.subscribers = () => io.of('/').sockets.size
    state.publish = (message) => { io.emit('m', message) }
    server.listen({ port: 0, host: '127.0.0.1' })
    await once(server, 'listening')
    return {
      port: server.address().port,
      close: () => { io.close() }
    }
  }
}

async function start (spec) {
  const factory = COMPETITORS[spec.competitor]
  if (factory === undefined) throw new Error(`unknown competitor ${spec.competitor}`)
  const state = { subscribers: undefined, publish: undefined }
  const server = await factory(spec, state)
  return {
    port: server.port,
    close: server.close,
    command: async (cmd, args) => {
      if (cmd === 'subscribers') return state.subscribers()
      if (cmd === 'publish') return publishSteady(state, args)
      throw new Error(`unknown command ${cmd}`)
    }
  }
}

module.exports = { start, CALLBACK }
