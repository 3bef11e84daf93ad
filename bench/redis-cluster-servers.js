'use strict'

// redis-server processes for bench/redis-cluster.js, on TCP (a cluster's nodes find each other by
// address, so the single server it is compared with listens on TCP too): one server alone, or a
// local Redis Cluster of 3 primaries and 3 replicas made by `redis-cli --cluster create`. Every
// process has persistence off, lives in its own temporary folder, and is killed at the end (or
// when this process exits first).

const fs = require('node:fs')
const os = require('node:os')
const net = require('node:net')
const path = require('node:path')
const { spawn, execFile } = require('node:child_process')
const { promisify } = require('node:util')
const { setTimeout: sleep } = require('node:timers/promises')

const PRIMARIES = 3
const REPLICAS_EACH = 1

/** A port free on 127.0.0.1 now, whose cluster bus port (port + 10000) is free too. */
async function freePort () {
  for (;;) {
    const port = await listenOnce(0)
    if (port + 10000 <= 65535 && await listenOnce(port + 10000).then(() => true, () => false)) return port
  }
}

function listenOnce (port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** One redis-server on 127.0.0.1:port, resolved once it accepts connections. */
async function startNode (binary, args = []) {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'comet-bench-redis-'))
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const killOnExit = () => child.kill('SIGKILL')
  process.on('exit', killOnExit)
  const exited = new Promise(resolve => child.once('exit', resolve))
  let output = ''
  child.stdout.setEncoding('utf8')
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server on ${port} did not start within 10 s:\n${output}`)), 10000)
    child.stdout.on('data', text => {
      output += text
      if (/ready to accept connections/i.test(output)) { clearTimeout(timer); resolve() }
    })
    child.once('exit', code => { clearTimeout(timer); reject(new Error(`redis-server on ${port} exited (${code}):\n${output}`)) })
  })
  child.stdout.resume() // its log from now on: read and dropped
  return {
    port,
    pid: child.pid,
    async stop () {
      process.off('exit', killOnExit)
      child.kill('SIGKILL')
      await exited
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** What a node has sent so far: every byte it wrote (/proc, any socket) and its INFO counters. */
async function sentBy (node, client) {
  const io = fs.readFileSync(`/proc/${node.pid}/io`, 'utf8')
  const info = await client.info('stats')
  const field = (text, name) => Number(new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(text)?.[1] ?? NaN)
  return {
    written: field(io, 'wchar'),
    output: field(info, 'total_net_output_bytes'),
    replication: field(info, 'total_net_repl_output_bytes')
  }
}

const TICKS = (() => {
  try {
    return Number(require('node:child_process').execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

/** A process's user + system CPU time so far, ms (from /proc, in clock ticks). */
function cpuOf (pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS
}

async function startSingle (binary) {
  return startNode(binary)
}

/**
 * Six nodes made a cluster (3 primaries, a replica each), resolved once every node says the
 * cluster is ok and every replica is in sync. `nodes` holds { port, pid, role, shard } where
 * shard is the primary's index (0-2), so a replica knows its primary.
 */
async function startCluster (binary, redisCli) {
  const { Redis } = require('ioredis')
  const nodes = []
  let described
  try {
    for (let i = 0; i < PRIMARIES * (1 + REPLICAS_EACH); i++) {
      nodes.push(await startNode(binary, ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', '5000', '--cluster-require-full-coverage', 'no']))
    }
    await promisify(execFile)(redisCli, ['--cluster', 'create', ...nodes.map(n => `127.0.0.1:${n.port}`),
      '--cluster-replicas', String(REPLICAS_EACH), '--cluster-yes'], { timeout: 60000 })
    const deadline = Date.now() + 30000
    const clients = nodes.map(n => new Redis(n.port, '127.0.0.1'))
    try {
      for (;;) {
        const infos = await Promise.all(clients.map(c => c.call('CLUSTER', 'INFO')))
        const repl = await Promise.all(clients.map(c => c.info('replication')))
        if (infos.every(i => /cluster_state:ok/.test(i)) && repl.every(r => /role:master/.test(r) || /master_link_status:up/.test(r))) break
        if (Date.now() > deadline) throw new Error('the cluster was not ok within 30 s')
        await sleep(100)
      }
      const ids = await Promise.all(clients.map(c => c.call('CLUSTER', 'MYID')))
      const shards = await clients[0].call('CLUSTER', 'SHARDS')
      // CLUSTER SHARDS: [slots, [ranges], nodes, [[id, ...], ...]] per shard, primaries in slot order
      described = shards.map(shard => {
        const fields = Object.fromEntries(Array.from({ length: shard.length / 2 }, (_, i) => [shard[2 * i], shard[2 * i + 1]]))
        return { slots: fields.slots, ids: fields.nodes.map(n => n[n.indexOf('id') + 1]), roles: fields.nodes.map(n => n[n.indexOf('role') + 1]) }
      }).sort((a, b) => a.slots[0] - b.slots[0])
      for (const [index, node] of nodes.entries()) {
        const shard = described.findIndex(s => s.ids.includes(ids[index]))
        node.shard = shard
        node.role = described[shard].roles[described[shard].ids.indexOf(ids[index])] === 'master' ? 'primary' : 'replica'
      }
    } finally {
      for (const c of clients) c.disconnect()
    }
  } catch (err) {
    await Promise.all(nodes.map(n => n.stop()))
    throw err
  }
  nodes.sort((a, b) => a.shard - b.shard || (a.role === 'primary' ? -1 : 1))
  return {
    nodes,
    /** Per shard, its slot ranges as [first, last] pairs. */
    shards: described.map(s => Array.from({ length: s.slots.length / 2 }, (_, i) => [Number(s.slots[2 * i]), Number(s.slots[2 * i + 1])])),
    stop: () => Promise.all(nodes.map(n => n.stop()))
  }
}

module.exports = { startSingle, startCluster, sentBy, cpuOf }
