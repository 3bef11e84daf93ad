'use strict'

// Heap while Redis hangs: redis-server is stopped (SIGSTOP) for 10 s while one instance (in this
// process) publishes 1 KB messages at full speed, 100 per event-loop turn, each publish left to
// fail; then it is woken (SIGCONT). Reported: heap before, highest during and after the hang
// (after a GC), how many publishes were tried and failed, and how many of them Redis stored once
// awake although reported failed. With COMET_DIST_BASELINE, the same for that build, stopped at
// 1 GB of heap should it grow without bound. Heap is sampled every 250 ms: live (after a GC),
// which is what the hang makes the instance keep, and raw (garbage included). Run with `node --expose-gc bench/run.js redis-hang`
// (otherwise heap is read without a GC first). Only when named: it takes about 30 s.

const path = require('node:path')
const { setTimeout: sleep } = require('node:timers/promises')
const { log } = require('./common.js')
const { COMET_DIST, COMET_DIST_BASELINE, cometRedisOf } = require('./servers.js')
const { findRedisServer, startRedis, INSTALL_HINT } = require('./redis-fanout.js')

const PAYLOAD = 'x'.repeat(1024)
const MB = 1024 * 1024
const SAFETY = 1024 * MB

function heap () {
  global.gc?.()
  return process.memoryUsage().heapUsed
}

async function measure (label, dist, redis, hangMs) {
  const Fastify = require('fastify')
  const plugin = require(path.join(dist, 'index.js'))
  const { cometRedis } = cometRedisOf(dist)
  const app = Fastify()
  await app.register(plugin, { broker: cometRedis({ url: redis.path, commandTimeout: 1000 }) })
  const name = `hang-${label}`
  const channel = app.comet.channel({ name, history: 100 })
  await channel.publish('warm')
  const before = heap()
  const count = { attempts: 0, failed: 0, stored: 0, running: true }
  let highest = before
  let highestLive = before
  const publisher = (async () => {
    while (count.running) {
      for (let i = 0; i < 100; i++) {
        count.attempts++
        channel.publish(PAYLOAD).then(() => count.stored++, () => count.failed++)
      }
      await new Promise(resolve => setImmediate(resolve))
    }
  })()
  process.kill(redis.pid, 'SIGSTOP')
  const end = Date.now() + hangMs
  while (Date.now() < end && highestLive < SAFETY) {
    await sleep(250)
    highest = Math.max(highest, process.memoryUsage().heapUsed)
    highestLive = Math.max(highestLive, heap())
  }
  count.running = false
  await publisher
  process.kill(redis.pid, 'SIGCONT')
  // Every attempt settled, and Redis answers again.
  while (count.failed + count.stored < count.attempts) await sleep(50)
  for (;;) {
    try {
      await channel.publish('after')
      break
    } catch { await sleep(50) }
  }
  const seq = Number(await redis.admin.hget(`comet:{${name}}:meta`, 'seq'))
  const after = heap()
  await app.close()
  const { attempts, failed, stored } = count
  return { label, before, highest, highestLive, after, attempts, failed, stored, ranAfterFailing: seq - 2 - stored, stopped: highestLive >= SAFETY }
}

async function run ({ quick }) {
  const binary = findRedisServer()
  if (binary === undefined) {
    log(`redis-hang skipped: ${INSTALL_HINT}`)
    return `_redis-hang skipped: ${INSTALL_HINT}_\n`
  }
  const hangMs = quick ? 1000 : 10000
  const builds = [['this build', COMET_DIST]]
  if (COMET_DIST_BASELINE !== undefined) builds.push(['baseline build', COMET_DIST_BASELINE])
  const rows = []
  for (const [label, dist] of builds) {
    const redis = await startRedis(binary)
    try {
      log(`redis-hang: ${label}, Redis stopped for ${hangMs / 1000} s`)
      rows.push(await measure(label.replace(' ', '-'), dist, redis, hangMs))
    } finally {
      await redis.stop()
    }
  }
  const mb = bytes => (bytes / MB).toFixed(1)
  return [
    `Redis stopped (SIGSTOP) for ${hangMs / 1000} s, one instance publishing 1 KB messages at full speed (commandTimeout 1000 ms, default maxInFlight)${global.gc === undefined ? '; heap read without GC (run node with --expose-gc)' : ''}:`,
    '',
    '| build | heap before | highest during, live (GC first) | highest during, raw | after | publishes tried | failed | stored although reported failed |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(row => `| ${row.label}${row.stopped ? ' (stopped at 1 GB)' : ''} | ${mb(row.before)} MB | ${mb(row.highestLive)} MB | ${mb(row.highest)} MB | ${mb(row.after)} MB | ${row.attempts.toLocaleString('en-US')} | ${row.failed.toLocaleString('en-US')} | ${row.ranAfterFailing.toLocaleString('en-US')} |`),
    ''
  ].join('\n')
}

module.exports = { name: 'redis-hang', run }
