'use strict'

// Channels that come and go: room names used once each (a stream subscribes to the named channel
// and leaves; one room in ten gets a message), then the server's heap, after a full GC, once the
// messages' historyTtl has passed. The plugin holds a named channel only while it has subscribers
// or messages to keep, so the heap should come back to where it started.
//
// The server runs in a child process with --expose-gc (server-child.js loads this file as its
// spec.module). Each request is one room: GET /room/NAME subscribes to channel NAME and ends after
// 1 ms (maxDuration), so a handful of keep-alive connections carry every room without leaving
// sockets in TIME_WAIT; ?say=1 publishes one message to the room while it is subscribed.

const net = require('node:net')
const path = require('node:path')
const { setTimeout: sleep } = require('node:timers/promises')
const { startServer, table, fmtInt, fmtBytes, log } = require('./common.js')

const HISTORY_TTL = 500 // ms
const CONNECTIONS = 32
const CHUNKED_END = '\r\n0\r\n\r\n'

// ---------------------------------------------------------------------------------------------
// Server (in the child process)

async function start () {
  const { startFastify, COMET_DIST } = require('./servers.js')
  let app
  const server = await startFastify(async fastify => {
    app = fastify
    await fastify.register(require(path.join(COMET_DIST, 'index.js')), { padding: 0, maxDuration: 1 })
    fastify.get('/room/:name', (request, reply) => {
      const channel = fastify.comet.channel({ name: request.params.name, history: 10, historyTtl: HISTORY_TTL })
      const streaming = reply.comet(channel, 'cb')
      if (request.query.say !== undefined) channel.publish('hello')
      return streaming
    })
  })
  return {
    port: server.port,
    close: server.close,
    command: async (cmd) => {
      if (cmd === 'channels') return app.comet.stats().channels
      if (cmd !== 'memory') throw new Error(`unknown command ${cmd}`)
      for (let i = 0; i < 4; i++) {
        global.gc()
        await new Promise(setImmediate)
      }
      return process.memoryUsage().heapUsed
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Client

/** Requests the rooms `prefix-i` for each i of `rooms` on one keep-alive connection, one after another. */
async function visit (port, prefix, rooms) {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true })
  socket.setEncoding('latin1')
  const lost = new Promise((resolve, reject) => {
    socket.once('error', reject)
    socket.once('close', () => reject(new Error('the server closed the connection')))
  })
  lost.catch(() => {})
  let received = ''
  let wake
  socket.on('data', chunk => {
    received += chunk
    wake?.()
  })
  try {
    for (const i of rooms) {
      received = ''
      socket.write(`GET /room/${prefix}-${i}${i % 10 === 0 ? '?say=1' : ''} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`)
      while (!received.endsWith(CHUNKED_END)) await Promise.race([new Promise(resolve => { wake = resolve }), lost])
      if (!received.startsWith('HTTP/1.1 200')) throw new Error(`unexpected response: ${received.slice(0, 200)}`)
    }
  } finally {
    socket.destroy()
  }
}

/** Uses `count` room names, spread over CONNECTIONS connections; resolves with the seconds it took. */
async function useRooms (port, prefix, count) {
  const started = process.hrtime.bigint()
  const lanes = Array.from({ length: CONNECTIONS }, (_, lane) => {
    const rooms = []
    for (let i = lane; i < count; i += CONNECTIONS) rooms.push(i)
    return visit(port, prefix, rooms)
  })
  await Promise.all(lanes)
  return Number(process.hrtime.bigint() - started) / 1e9
}

async function run ({ quick, inproc }) {
  if (inproc && typeof global.gc !== 'function') throw new Error('channel-churn --inproc needs node --expose-gc')
  const rooms = quick ? 10000 : 100000
  const server = await startServer({ module: 'channel-churn.js', competitor: 'fastify-comet', scenario: 'churn' }, { inproc, execArgv: ['--expose-gc'] })
  try {
    await useRooms(server.port, 'warm-up', 2000) // compiled code and grown pools are not what is measured
    await sleep(HISTORY_TTL * 2)
    const before = await server.call('memory')
    const seconds = await useRooms(server.port, 'room', rooms)
    const during = await server.call('memory')
    const held = await server.call('channels')
    await sleep(HISTORY_TTL * 2)
    const after = await server.call('memory')
    const left = await server.call('channels')
    const change = (after - before) / before
    log(`  channel-churn ${fmtInt(rooms)} rooms in ${seconds.toFixed(1)} s; heap ${fmtBytes(before)} -> ${fmtBytes(during)} -> ${fmtBytes(after)}`)
    return [
      `### Channels that come and go: ${fmtInt(rooms)} room names used once each (history 10, historyTtl ${HISTORY_TTL} ms, one in ten with a message)`,
      '',
      table(['', 'heap used (after GC)', 'channels counted by stats()'], [
        ['before (after 2,000 warm-up rooms)', fmtBytes(before), '-'],
        [`right after the ${fmtInt(rooms)} rooms (${fmtInt(rooms / seconds)} rooms/s)`, fmtBytes(during), `${fmtInt(held.open)} (rooms whose message is still within its ttl)`],
        [`${HISTORY_TTL * 2} ms later`, fmtBytes(after), fmtInt(left.open)]
      ]),
      '',
      `- heap ${change >= 0 ? '+' : ''}${(change * 100).toFixed(1)} % from before to after: ${Math.abs(change) <= 0.1 ? 'within' : 'NOT within'} 10 %`
    ].join('\n')
  } finally {
    await server.close()
  }
}

module.exports = { name: 'channel-churn', run, start }
