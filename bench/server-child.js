'use strict'

// Runs one competitor (servers.js, or the module named by spec.module, e.g. redis-servers.js) in its
// own process and answers the parent over IPC:
//   { id, cmd: 'start', spec }  -> { id, result: { port } }
//   { id, cmd: 'exit' }         -> closes and exits 0 (so --cpu-prof can write its profile)
//   { id, cmd, args }           -> whatever servers.js answers (stats, memory, samples, publish)

const path = require('node:path')

let server

process.on('message', async ({ id, cmd, spec, args }) => {
  try {
    if (cmd === 'start') {
      server = await require(path.join(__dirname, spec.module ?? 'servers.js')).start(spec)
      process.send({ id, result: { port: server.port, pid: process.pid } })
    } else if (cmd === 'exit') {
      await server?.close()
      process.send({ id, result: true }, () => process.exit(0))
    } else {
      process.send({ id, result: await server.command(cmd, args) })
    }
  } catch (err) {
    process.send({ id, error: err.stack })
  }
})

process.on('disconnect', () => process.exit(0))
