'use strict'

// Pub/sub on a Redis Cluster against one redis-server (issue 20), with ioredis directly: what the
// broker's traffic costs below it. Started by this benchmark, same machine, same run: one
// redis-server, and a local cluster of 3 primaries and 3 replicas (bench/redis-cluster-servers.js).
// 30 channels (`comet:{room-N}`, spread over the 3 shards by their hash slots); INSTANCES
// subscribing instances (child processes, bench/redis-cluster-subscriber.js), each subscribed to
// every channel, as the application instances following them; this process publishes MESSAGES,
// the channels in turn, WINDOW publishes in flight (each acknowledged one making room for the
// next). Scenarios:
//   one redis-server            PUBLISH / SUBSCRIBE (the baseline of the ratios)
//   cluster, classic pub/sub    PUBLISH / SUBSCRIBE through an ioredis Cluster: every message is
//                               broadcast over the cluster bus to every node
//   cluster, sharded pub/sub    SPUBLISH / SSUBSCRIBE (ioredis Cluster, shardedSubscribers): a
//                               message stays within the shard that owns its channel's slot
// Bytes per published message, per node: what its process wrote and read over the measured publish
// (/proc/PID/io wchar and rchar: clients, replication and the cluster bus, which INFO's
// total_net_output_bytes does not count), and its INFO total_net_output_bytes (to clients).
// Run only when named (bench/run.js EXTRA): starting the cluster takes seconds.

const fs = require('node:fs')
const path = require('node:path')
const { setTimeout: sleep } = require('node:timers/promises')
const { startServer, median, orderFor, table, fmt, fmtInt, log } = require('./common.js')
const { subscribe, allReach } = require('./fanout.js')
const { findRedisServer, StampedSubscriber, Samples, STAMP, INSTALL_HINT } = require('./redis-fanout.js')
const { startSingle, startCluster, sentBy, cpuOf } = require('./redis-cluster-servers.js')

const SINGLE = 'one redis-server'
const CLASSIC = 'cluster, classic pub/sub'
const SHARDED = 'cluster, sharded pub/sub'
const SCENARIOS = [SINGLE, CLASSIC, SHARDED]
const MODES = { [SINGLE]: 'single', [CLASSIC]: 'classic', [SHARDED]: 'sharded' }
const CHANNELS = Array.from({ length: 30 }, (_, i) => `comet:{room-${i}}`)
const INSTANCES = 2
const WINDOW = Number(process.env.REDIS_CLUSTER_WINDOW || 64)
const IDLE_MS = 1000
// fastify-comet on each (the broker, two instances as child processes, bench/redis-servers.js):
// CLIENTS_PER_CHANNEL raw-socket clients per channel on each instance, instance 1 publishing.
const COMET_SINGLE = 'fastify-comet + one redis-server'
const COMET_CLUSTER = 'fastify-comet + cluster (sharded)'
const COMET_SCENARIOS = [COMET_SINGLE, COMET_CLUSTER]
const CLIENTS_PER_CHANNEL = 10

const nowMicros = () => Number(process.hrtime.bigint() / 1000n)

/** A message as long as a short comet entry, stamped with its publish time. */
function payload (n) {
  return `{"n":${n},"t":${nowMicros()},"text":"hello","id":"0123456789ab-${n}"}`
}

/** Publishes from..from+count-1 on `channels` in turn, `window` in flight. */
async function publishWindow (publish, channels, from, count, window) {
  let next = 0
  const worker = async () => {
    while (next < count) {
      const n = from + next++
      await publish(channels[n % channels.length], payload(n))
    }
  }
  await Promise.all(Array.from({ length: window }, worker))
}

/**
 * fastify-comet's broker on `target`: two instances, each with CLIENTS_PER_CHANNEL clients on every
 * channel, instance 1 publishing `messages` (the channels in turn) WINDOW in flight. Resolves with
 * the figures, or { unsupported } when this build's broker refuses the `cluster` option.
 */
async function measureComet (scenario, { target, messages, warmup }) {
  const params = scenario === COMET_SINGLE
    ? { redis: `redis://127.0.0.1:${target.nodes[0].port}`, channels: CHANNELS }
    : { cluster: target.nodes.map(n => ({ host: '127.0.0.1', port: n.port })), channels: CHANNELS }
  const servers = []
  const clients = []
  try {
    for (let i = 0; i < INSTANCES; i++) {
      try {
        servers.push(await startServer({ module: 'redis-servers.js', competitor: 'fastify-comet + Redis', scenario: 'redis-cluster', params }))
      } catch (err) {
        if (scenario === COMET_CLUSTER && /Invalid comet option "cluster"/.test(err.message)) return { unsupported: err.message.split('\n')[0] }
        throw err
      }
    }
    for (const server of servers) {
      for (let c = 0; c < CHANNELS.length; c++) {
        const batch = Array.from({ length: CLIENTS_PER_CHANNEL }, () => subscribe(server.port, STAMP, 0, StampedSubscriber, `/${c}`))
        clients.push(...await Promise.all(batch))
      }
    }
    let sent = 0
    const publish = async (count) => {
      const result = await servers[0].call('publish', { from: sent, count, window: WINDOW })
      sent += count
      return result
    }
    const reset = () => { for (const c of clients) c.count = 0 }
    // every client hears its channel before anything is measured
    const deadline = Date.now() + 10000
    while (clients.some(c => c.count === 0)) {
      const err = clients.find(c => c.error !== undefined)?.error
      if (err !== undefined) throw err
      if (Date.now() > deadline) throw new Error(`${scenario}: ${clients.filter(c => c.count === 0).length} clients heard nothing in 10 s`)
      await publish(CHANNELS.length)
      await sleep(50)
    }
    for (let total = -1; ;) { // until nothing more arrives
      const now = clients.reduce((sum, c) => sum + c.count, 0)
      if (now === total) break
      total = now
      await sleep(200)
    }
    reset()
    let arrived = allReach(clients, warmup / CHANNELS.length)
    await publish(warmup)
    await arrived
    reset()
    const samples = new Samples(clients.length * (messages / CHANNELS.length))
    for (const c of clients) c.samples = samples
    const before = await counters(target.nodes)
    const serverCpu = await Promise.all(servers.map(server => server.call('cpu')))
    arrived = allReach(clients, messages / CHANNELS.length)
    const { start, end, failed, error } = await publish(messages)
    const last = await arrived
    const after = await counters(target.nodes)
    const serverCpuAfter = await Promise.all(servers.map(server => server.call('cpu')))
    for (const c of clients) c.samples = undefined
    await sleep(200) // a message delivered twice would show now
    const off = clients.filter(c => c.count !== messages / CHANNELS.length)
    if (off.length > 0) throw new Error(`${scenario}: ${off.length} clients got another count than ${messages / CHANNELS.length}, e.g. ${off[0].count}`)
    if (failed > 0) log(`  ${scenario}: ${failed} of ${messages} publishes rejected (${error}), yet every client got every message`)
    const deliveries = clients.length * (messages / CHANNELS.length)
    const [p50, p99] = samples.percentiles(50, 99)
    return {
      ms: Number(last - BigInt(start)) / 1e6,
      publishMs: Number(BigInt(end) - BigInt(start)) / 1e6,
      deliveries,
      failed,
      p50,
      p99,
      written: delta(after, before, 'written').map(b => b / messages),
      redisCpu: (delta(after, before, 'cpu').reduce((a, b) => a + b, 0) * 1e6) / messages, // ns per publish, every node
      serverCpu: (serverCpuAfter.reduce((sum, us, i) => sum + us - serverCpu[i], 0) * 1000) / deliveries // ns per delivery
    }
  } finally {
    for (const c of clients) c.close()
    await Promise.all(servers.map(server => server.close()))
  }
}

function findRedisCli (binary) {
  const beside = path.join(path.dirname(binary), 'redis-cli')
  return fs.existsSync(beside) ? beside : undefined
}

/** Counters of every node: bytes written and read (/proc), INFO output bytes, CPU ms. */
async function counters (nodes) {
  return Promise.all(nodes.map(async node => {
    const io = fs.readFileSync(`/proc/${node.pid}/io`, 'utf8')
    const read = Number(/^rchar:\s*(\d+)/m.exec(io)[1])
    return { ...await sentBy(node, node.admin), read, cpu: cpuOf(node.pid) }
  }))
}

function delta (after, before, key) {
  return after.map((a, i) => a[key] - before[i][key])
}

/**
 * How `scenario` publishes: on the one server; classic, each channel's PUBLISH sent to the primary
 * that owns its slot, as a publish script would run there (an ioredis Cluster sends PUBLISH, which
 * has no key, to any node); sharded, SPUBLISH through an ioredis Cluster, which routes it there.
 */
function publisherFor (mode, { target, owners }) {
  const { Redis, Cluster } = require('ioredis')
  if (mode === 'sharded') {
    const cluster = new Cluster(target.nodes.map(n => ({ host: '127.0.0.1', port: n.port })))
    return { publish: (channel, message) => cluster.spublish(channel, message), close: () => cluster.disconnect() }
  }
  const ports = mode === 'single' ? [target.nodes[0].port] : [...new Set(owners.values())]
  const clients = new Map(ports.map(port => [port, new Redis(port, '127.0.0.1')]))
  const single = clients.get(ports[0])
  return {
    publish: mode === 'single' ? (channel, message) => single.publish(channel, message) : (channel, message) => clients.get(owners.get(channel)).publish(channel, message),
    close: () => { for (const client of clients.values()) client.disconnect() }
  }
}

async function measure (scenario, { target, owners, firstShard, messages, warmup }) {
  const mode = MODES[scenario]
  const addresses = target.nodes.map(n => ({ host: '127.0.0.1', port: n.port }))
  const publisher = publisherFor(mode, { target, owners })
  const { publish } = publisher
  const subscribers = []
  try {
    for (let i = 0; i < INSTANCES; i++) {
      subscribers.push(await startServer({
        module: 'redis-cluster-subscriber.js', competitor: scenario, params: { mode, nodes: addresses, channels: CHANNELS }
      }))
    }
    // every instance hears every channel before anything is measured
    const deadline = Date.now() + 10000
    let sent = 0
    for (;;) {
      await Promise.all(CHANNELS.map(channel => publish(channel, payload(sent++))))
      await sleep(50)
      const counts = await Promise.all(subscribers.map(s => s.call('count')))
      if (counts.every(n => n >= CHANNELS.length)) break
      if (Date.now() > deadline) throw new Error(`${scenario}: subscribers heard ${counts.join(', ')} messages in 10 s`)
    }
    const phase = async (count, measured, channels = CHANNELS) => {
      await Promise.all(subscribers.map(s => s.call('arm', { target: count })))
      const before = measured && await counters(target.nodes)
      const subscriberCpu = measured && await Promise.all(subscribers.map(s => s.call('cpu')))
      const publisherCpu = process.cpuUsage()
      const start = process.hrtime.bigint()
      await publishWindow(publish, channels, sent, count, WINDOW)
      const acked = process.hrtime.bigint()
      sent += count
      const done = await Promise.all(subscribers.map(s => s.call('done')))
      if (!measured) return
      const after = await counters(target.nodes)
      const { user, system } = process.cpuUsage(publisherCpu)
      const subscriberCpuAfter = await Promise.all(subscribers.map(s => s.call('cpu')))
      await sleep(200) // a message delivered twice would show now
      const counts = await Promise.all(subscribers.map(s => s.call('count')))
      if (counts.some(n => n !== count)) throw new Error(`${scenario}: subscribers counted ${counts.join(', ')}, ${count} each expected`)
      const last = done.reduce((max, d) => BigInt(d.at) > max ? BigInt(d.at) : max, 0n)
      const deliveries = count * INSTANCES
      return {
        ms: Number(last - start) / 1e6,
        publishMs: Number(acked - start) / 1e6,
        p50: median(done.map(d => d.p50)),
        p99: Math.max(...done.map(d => d.p99)),
        written: delta(after, before, 'written').map(b => b / count),
        read: delta(after, before, 'read').map(b => b / count),
        output: delta(after, before, 'output').map(b => b / count),
        redisCpu: (delta(after, before, 'cpu').reduce((a, b) => a + b, 0) * 1e6) / count, // ns per publish, every node
        publisherCpu: ((user + system) * 1000) / count, // ns per publish
        subscriberCpu: (subscriberCpuAfter.reduce((sum, us, i) => sum + us - subscriberCpu[i], 0) * 1000) / deliveries // ns
      }
    }
    await phase(warmup, false)
    const idleBefore = await counters(target.nodes)
    await sleep(IDLE_MS)
    const idle = delta(await counters(target.nodes), idleBefore, 'written').map(b => (b * 1000) / IDLE_MS)
    const all = await phase(messages, true)
    // the bytes per node of messages on the first shard's channels only
    const { written, read, output } = await phase(Math.round(messages / 3), true, firstShard)
    return { ...all, idle, shard: { written, read, output } }
  } finally {
    await Promise.all(subscribers.map(s => s.close()))
    publisher.close()
  }
}

async function run ({ quick, rounds: roundsOpt }) {
  const binary = findRedisServer()
  const cli = binary && findRedisCli(binary)
  if (binary === undefined || cli === undefined) {
    log(`  redis-cluster skipped: ${INSTALL_HINT}`)
    return `### Redis Cluster pub/sub: skipped, ${INSTALL_HINT}`
  }
  const messages = quick ? 3000 : 30000
  const warmup = quick ? 300 : 3000
  const rounds = roundsOpt ?? (quick ? 1 : 3)
  const { Redis } = require('ioredis')
  log('  redis-cluster: starting one redis-server and a cluster of 6')
  const single = { nodes: [await startSingle(binary)] }
  let cluster
  try {
    cluster = await startCluster(binary, cli)
    for (const node of [...single.nodes, ...cluster.nodes]) node.admin = new Redis(node.port, '127.0.0.1')
    const slots = await Promise.all(CHANNELS.map(channel => cluster.nodes[0].admin.call('CLUSTER', 'KEYSLOT', channel)))
    const shardOf = (slot) => cluster.shards.findIndex(ranges => ranges.some(([first, last]) => slot >= first && slot <= last))
    const perShard = cluster.shards.map((_, shard) => slots.filter(slot => shardOf(slot) === shard).length)
    const primaries = cluster.nodes.filter(n => n.role === 'primary')
    const owners = new Map(CHANNELS.map((channel, i) => [channel, primaries.find(n => n.shard === shardOf(slots[i])).port]))
    const firstShard = CHANNELS.filter((_, i) => shardOf(slots[i]) === 0)
    const results = Object.fromEntries(SCENARIOS.map(s => [s, []]))
    for (let round = 0; round < rounds; round++) {
      for (const scenario of orderFor(SCENARIOS, round)) {
        const r = await measure(scenario, { target: scenario === SINGLE ? single : cluster, owners, firstShard, messages, warmup })
        results[scenario].push(r)
        log(`  redis-cluster round ${round + 1}/${rounds} ${scenario}: ${fmtInt((messages * INSTANCES) / (r.ms / 1000))} deliveries/s, ` +
          `${fmtInt(messages / (r.publishMs / 1000))} publishes/s, p50 ${fmt(r.p50, 1)} ms, written per publish ${r.written.map(b => fmtInt(b)).join(' / ')} B`)
      }
    }
    const comet = Object.fromEntries(COMET_SCENARIOS.map(s => [s, []]))
    for (let round = 0; round < rounds; round++) {
      for (const scenario of orderFor(COMET_SCENARIOS, round)) {
        if (comet[scenario].unsupported !== undefined) continue
        const r = await measureComet(scenario, { target: scenario === COMET_SINGLE ? single : cluster, messages, warmup })
        if (r.unsupported !== undefined) {
          comet[scenario].unsupported = r.unsupported
          log(`  redis-cluster ${scenario}: not supported by this build (${r.unsupported})`)
          continue
        }
        comet[scenario].push(r)
        log(`  redis-cluster round ${round + 1}/${rounds} ${scenario}: ${fmtInt(r.deliveries / (r.ms / 1000))} deliveries/s, ` +
          `${fmtInt(messages / (r.publishMs / 1000))} publishes/s, p50 ${fmt(r.p50, 1)} ms, written per publish ${r.written.map(b => fmtInt(b)).join(' / ')} B`)
      }
    }
    return [report(results, { messages, rounds, perShard, cluster, single }), '', cometReport(comet, { messages, rounds })].join('\n')
  } finally {
    for (const node of [...single.nodes, ...(cluster?.nodes ?? [])]) node.admin?.disconnect()
    await Promise.all([single.nodes[0].stop(), cluster?.stop()])
  }
}

function report (results, { messages, rounds, perShard, cluster }) {
  const deliveries = messages * INSTANCES
  const shardMessages = Math.round(messages / 3)
  const of = (s, key) => results[s].map(r => r[key])
  const rates = (s) => of(s, 'ms').map(ms => deliveries / (ms / 1000))
  const rate = (s) => deliveries / (median(of(s, 'ms')) / 1000)
  const roundRatio = (s) => median(of(s, 'ms').map((ms, round) => results[SINGLE][round].ms / ms))
  const total = (s, key) => median(results[s].map(r => r[key].reduce((a, b) => a + b, 0)))
  const rows = SCENARIOS.map(s => [
    s,
    fmtInt(rate(s)),
    `${fmtInt(Math.min(...rates(s)))} – ${fmtInt(Math.max(...rates(s)))}`,
    `${fmt(rate(s) / rate(SINGLE))}x`,
    `${fmt(roundRatio(s))}x`,
    fmtInt(messages / (median(of(s, 'publishMs')) / 1000)),
    fmt(median(of(s, 'p50')), 1),
    fmt(median(of(s, 'p99')), 1),
    fmtInt(total(s, 'written')),
    fmtInt(median(of(s, 'redisCpu'))),
    fmtInt(median(of(s, 'publisherCpu'))),
    fmtInt(median(of(s, 'subscriberCpu')))
  ])
  // bytes per published message on the first shard's channels, node by node: the median over rounds
  const perNode = (s, key, i) => median(results[s].map(r => r.shard[key][i]))
  const idle = (s, i) => fmtInt(median(results[s].map(r => r.idle[i])))
  const nodeRows = [
    [SINGLE, fmtInt(perNode(SINGLE, 'written', 0)), fmtInt(perNode(SINGLE, 'read', 0)), fmtInt(perNode(SINGLE, 'output', 0)), '', '', '', idle(SINGLE, 0)],
    ...cluster.nodes.map((node, i) => [
      `cluster shard ${node.shard + 1} ${node.role}` + (node.shard === 0 ? ' (owns the channels)' : ''),
      fmtInt(perNode(CLASSIC, 'written', i)), fmtInt(perNode(CLASSIC, 'read', i)), fmtInt(perNode(CLASSIC, 'output', i)),
      fmtInt(perNode(SHARDED, 'written', i)), fmtInt(perNode(SHARDED, 'read', i)), fmtInt(perNode(SHARDED, 'output', i)),
      idle(CLASSIC, i)
    ])
  ]
  const others = (s) => cluster.nodes.map((node, i) => node.shard === 0 ? 0 : perNode(s, 'written', i)).reduce((a, b) => a + b, 0)
  return [
    `### Redis Cluster pub/sub: ${CHANNELS.length} channels, ${INSTANCES} subscribing instances x ${fmtInt(messages)} messages, ` +
      `${WINDOW} publishes in flight, median of ${rounds} round(s)`,
    '',
    table(['scenario', 'deliveries/s (median)', 'min – max', `vs ${SINGLE}`, 'median of per-round ratios', 'publishes/s (acknowledged)',
      'latency p50 ms', 'latency p99 ms', 'bytes written per publish, every node', 'redis-server CPU ns/publish, every node',
      'publisher CPU ns/publish', 'subscriber CPU ns/delivery'], rows),
    '',
    `deliveries/s = ${INSTANCES} x ${fmtInt(messages)} / (first publish until both instances have the last message); publishes/s = ` +
      `${fmtInt(messages)} / (first publish until the last acknowledgement). Classic pub/sub sends each PUBLISH to the primary ` +
      'that owns its channel\'s slot (where a publish script runs), sharded sends SPUBLISH through an ioredis Cluster (routed there). ' +
      'Latency: publish call to the subscribing instance\'s handler (its time is in the message), every message; p50 the median ' +
      'of the instances\', p99 the highest. Bytes written: /proc/PID/io wchar of every node over the measured publish, per message. ' +
      'CPU: user+system time over the same span, of every redis-server node (/proc), of this process (the publisher), of the ' +
      `subscribing instances. Channels per shard: ${perShard.join(' / ')}.`,
    '',
    `### Bytes each node sends and receives per published message: ${fmtInt(shardMessages)} messages on shard 1's ` +
      `${perShard[0]} channels only, median of ${rounds} round(s)`,
    '',
    table(['node', 'classic: written B/msg', 'classic: read B/msg', 'classic: INFO output B/msg', 'sharded: written B/msg', 'sharded: read B/msg',
      'sharded: INFO output B/msg', 'background written, B/s idle'], nodeRows),
    '',
    'Written / read: the node process\'s /proc/PID/io wchar / rchar over the publish (every socket: clients, replication, ' +
      'the cluster bus), divided by the messages published; INFO output: `total_net_output_bytes` of `INFO stats` over the same ' +
      'span (to clients only: it counts no cluster bus byte). The subscribing instances\' connections sit where ioredis put them ' +
      '(classic: any node; sharded: each shard\'s primary). Background: what the node wrote in ' +
      `${IDLE_MS} ms with nothing published (cluster bus pings, the counters' own INFO replies), per second, ` +
      'the part of the per-message figures that is not the messages. ' +
      `The nodes of shards 2 and 3 together wrote ${fmtInt(others(CLASSIC))} B per message with classic pub/sub, ` +
      `${fmtInt(others(SHARDED))} B with sharded.`
  ].join('\n')
}

function cometReport (comet, { messages, rounds }) {
  const of = (s, key) => comet[s].map(r => r[key])
  const rate = (s) => median(comet[s].map(r => r.deliveries / (r.ms / 1000)))
  const roundRatio = (s) => median(comet[s].map((r, round) => comet[COMET_SINGLE][round].ms / r.ms))
  const rows = COMET_SCENARIOS.filter(s => comet[s].length > 0).map(s => [
    s,
    fmtInt(rate(s)),
    `${fmt(rate(s) / rate(COMET_SINGLE))}x`,
    `${fmt(roundRatio(s))}x`,
    fmtInt(messages / (median(of(s, 'publishMs')) / 1000)),
    fmt(median(of(s, 'p50')), 1),
    fmt(median(of(s, 'p99')), 1),
    fmtInt(median(of(s, 'written').map(w => w.reduce((a, b) => a + b, 0)))),
    fmtInt(median(of(s, 'redisCpu'))),
    fmtInt(median(of(s, 'serverCpu'))),
    String(Math.max(...of(s, 'failed')))
  ])
  const missing = COMET_SCENARIOS.filter(s => comet[s].unsupported !== undefined)
  return [
    `### fastify-comet on the broker: ${CHANNELS.length} channels x ${CLIENTS_PER_CHANNEL} clients on each of ${INSTANCES} instances, ` +
      `${fmtInt(messages)} messages published by instance 1, ${WINDOW} in flight, median of ${rounds} round(s)`,
    '',
    table(['competitor', 'deliveries/s (median)', `vs ${COMET_SINGLE}`, 'median of per-round ratios', 'publishes/s (acknowledged)', 'latency p50 ms', 'latency p99 ms',
      'bytes written per publish, every redis node', 'redis-server CPU ns/publish, every node', 'server CPU ns/delivery', 'publishes rejected (max)'], rows),
    '',
    `deliveries/s = ${INSTANCES * CHANNELS.length * CLIENTS_PER_CHANNEL} clients x ${fmtInt(messages / CHANNELS.length)} messages each / ` +
      '(first publish until the last client has its last message); publishes/s: until the last acknowledgement. Latency: publish ' +
      'call to the client reading it. Server CPU: both instances, per delivery.' +
      missing.map(s => ` ${s}: not measured, this build's broker refused it (${comet[s].unsupported}).`).join('')
  ].join('\n')
}

module.exports = { name: 'redis-cluster', run }
