'use strict'

// 4. Slow consumer: one client reads the response headers, then stops reading (socket.pause()),
// while an infinite source keeps producing. Every second the server reports the bytes it holds
// for that response (ServerResponse#writableLength, which includes the socket's queue) and how
// many items it pulled from the source. With backpressure both go flat once the kernel's socket
// buffers are full. Competitors run side by side, each in its own process.

const { startServer, openStream, table, fmtInt, fmtBytes, log } = require('./common.js')

const COMPETITORS = ['per-message', 'hand-coalesced', 'fastify-comet', '@fastify/sse', 'fastify-sse-v2']

async function run ({ quick, inproc }) {
  const seconds = quick ? 3 : 10
  const servers = []
  const sockets = []
  try {
    for (const competitor of COMPETITORS) {
      servers.push(await startServer({ competitor, scenario: 'slow', params: {} }, { inproc }))
    }
    for (const server of servers) sockets.push(await openStream(server.port, { pause: true }))
    const samples = COMPETITORS.map(() => [])
    for (let t = 1; t <= seconds; t++) {
      await new Promise(resolve => setTimeout(resolve, 1000))
      const round = await Promise.all(servers.map(server => server.call('sample')))
      round.forEach((sample, i) => samples[i].push(sample))
      log(`  slow-consumer t=${t}s ` + round.map((s, i) => `${COMPETITORS[i]} ${fmtInt(s.pulled)}/${fmtBytes(s.buffered)}`).join(', '))
    }
    const headers = ['t (s)', ...COMPETITORS.map(c => `${c} pulled / buffered`)]
    const rows = []
    for (let t = 0; t < seconds; t++) {
      rows.push([String(t + 1), ...samples.map(s => `${fmtInt(s[t].pulled)} / ${fmtBytes(s[t].buffered)}`)])
    }
    // Flat: nothing pulled and no growth in buffered bytes over the second half of the run.
    const mid = Math.floor(seconds / 2) - 1
    const verdicts = COMPETITORS.map((c, i) => {
      const s = samples[i]
      const last = s[seconds - 1]
      const pulled = last.pulled - s[mid].pulled
      const grown = last.buffered - s[mid].buffered
      const flat = pulled === 0 && grown <= 0
      return `${c}: ${flat ? 'flat' : 'GROWING'} (+${fmtInt(pulled)} items, ${grown >= 0 ? '+' : ''}${fmtBytes(grown)} from t=${mid + 1}s to t=${seconds}s; ` +
        `socket queue ${fmtBytes(last.socketQueued)} of ${fmtBytes(last.buffered)})`
    })
    return [
      `### Slow consumer: client stops reading, infinite source, ${seconds} s (items pulled / bytes buffered in the server)`,
      '',
      table(headers, rows),
      '',
      ...verdicts.map(v => `- ${v}`)
    ].join('\n')
  } finally {
    for (const socket of sockets) socket.destroy()
    await Promise.all(servers.map(server => server.close()))
  }
}

module.exports = { name: 'slow-consumer', run, COMPETITORS }
