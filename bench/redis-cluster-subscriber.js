'use strict'

// One subscribing instance of bench/redis-cluster.js, in its own process (server-child.js with
// spec.module = 'redis-cluster-subscriber.js'): an ioredis client subscribed to every channel of
// spec.params.channels, counting what arrives and reading each message's publish time.
//   spec.params.mode: 'single' (Redis, SUBSCRIBE), 'classic' (Cluster, SUBSCRIBE) or 'sharded'
//   (Cluster with shardedSubscribers, SSUBSCRIBE); spec.params.nodes: [{ host, port }].
// Commands: 'count' (messages so far), 'arm' { target } (counting again from 0), 'done' (resolves
// once `target` arrived, with the hrtime then and the latency percentiles of those messages).

const { median, percentile } = require('./common.js')

const DONE_TIMEOUT = 120000
const T = /"t":(\d+)/

async function start (spec) {
  const { Redis, Cluster } = require('ioredis')
  const { mode, nodes, channels } = spec.params
  const client = mode === 'single'
    ? new Redis(nodes[0].port, nodes[0].host)
    : new Cluster(nodes, { shardedSubscribers: mode === 'sharded' })
  let count = 0
  let target = Infinity
  let latencies = []
  let reached
  const onMessage = (channel, message) => {
    count++
    latencies.push(Number(process.hrtime.bigint() / 1000n) - Number(T.exec(message)[1]))
    if (count === target) reached?.(process.hrtime.bigint())
  }
  if (mode === 'sharded') {
    client.on('smessage', onMessage)
    // one command per channel: SSUBSCRIBE's channels must share a slot
    await Promise.all(channels.map(channel => client.ssubscribe(channel)))
  } else {
    client.on('message', onMessage)
    await client.subscribe(...channels)
  }
  const command = async (cmd, args) => {
    switch (cmd) {
      case 'count': return count
      case 'arm': {
        count = 0
        latencies = []
        target = args.target
        return true
      }
      case 'done': {
        const at = count >= target
          ? process.hrtime.bigint()
          : await new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error(`${count} of ${target} messages after ${DONE_TIMEOUT / 1000} s`)), DONE_TIMEOUT)
            reached = (now) => { clearTimeout(timer); resolve(now) }
          })
        reached = undefined
        return { at: String(at), count, p50: median(latencies) / 1000, p99: percentile(latencies, 99) / 1000 }
      }
      case 'cpu': {
        const { user, system } = process.cpuUsage()
        return user + system // µs
      }
      default: throw new Error(`unknown command ${cmd}`)
    }
  }
  return { port: undefined, close: () => client.disconnect(), command }
}

module.exports = { start }
