// The built package loads every way a user may load it.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { join, relative, resolve } from 'node:path'

const root = resolve(__dirname, '..')

// Child processes load dist/ without tap's coverage hooks: it is the built package under test.
function run (args: string[]): string {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  return execFileSync(process.execPath, args, { cwd: root, env, encoding: 'utf8' }).trim()
}

t.test('require() gives the plugin, with .default and .fastifyComet', async t => {
  const out = run(['-e', `
    const plugin = require('fastify-comet')
    const meta = plugin[Symbol.for('plugin-meta')]
    console.log(JSON.stringify({
      type: typeof plugin,
      same: plugin === plugin.default && plugin === plugin.fastifyComet,
      classes: typeof plugin.CometChannel + ' ' + typeof plugin.CometPush,
      name: meta.name,
      fastify: meta.fastify
    }))`])
  t.same(JSON.parse(out), { type: 'function', same: true, classes: 'function function', name: 'fastify-comet', fastify: '5.x' })
})

t.test('import default and { fastifyComet } from ESM', async t => {
  const out = run(['--input-type=module', '-e', `
    import fastifyComet, { fastifyComet as named, CometChannel, CometPush } from 'fastify-comet'
    console.log(typeof fastifyComet, fastifyComet === named, new CometChannel().size, typeof new CometPush().push)`])
  t.equal(out, 'function true 0 function')
})

t.test('fastify-comet/redis gives cometRedis to CommonJS and to ESM', async t => {
  t.equal(run(['-e', `
    const { cometRedis } = require('fastify-comet/redis')
    console.log(typeof cometRedis({ url: 'redis://127.0.0.1:1' }).connect)`]), 'function')
  t.equal(run(['--input-type=module', '-e', `
    import { cometRedis } from 'fastify-comet/redis'
    console.log(typeof cometRedis)`]), 'function')
})

t.test('the built plugin decorates the reply in a real app', async t => {
  const out = run(['-e', `
    const app = require('fastify')()
    app.register(require('fastify-comet'), { padding: 0 })
    app.get('/', (req, reply) => reply.comet(['a'], 'cb'))
    app.inject('/').then(res => { console.log(res.body); return app.close() })`])
  t.match(out, /^<html><body><script nonce="([0-9a-f]{32})">\(function\(w\)[^<]*<\/script><script nonce="\1">__fastifyComet\(\[0,"a",\]\);<\/script>$/)
})

t.test('require() of fastify-comet/client gives the client, as the classic script defines it', async t => {
  const out = run(['-e', `
    const client = require('fastify-comet/client')
    console.log(Object.keys(client).join(), typeof client.connect)`])
  t.equal(out, 'connect function')
})

t.test('import of fastify-comet/client: named connect and a default, the same module as require()', async t => {
  const out = run(['--input-type=module', '-e', `
    import FastifyComet, { connect } from 'fastify-comet/client'
    import { createRequire } from 'node:module'
    const required = createRequire(import.meta.url)('fastify-comet/client')
    console.log(typeof connect, connect === FastifyComet.connect, FastifyComet === required)`])
  t.equal(out, 'function true true')
})

t.test('the types of fastify-comet/client resolve from ESM and from CommonJS, and compile', async t => {
  const tsc = require.resolve('typescript/bin/tsc')
  const out = run([tsc, '-p', 'test/fixtures/client-types/tsconfig.json', '--traceResolution'])
  const resolved: Record<string, string> = {}
  let from = ''
  for (const line of out.split('\n')) {
    const resolving = /^======== Resolving module 'fastify-comet\/client' from '(.*)'\. ========$/.exec(line)
    if (resolving !== null) from = relative(root, resolving[1])
    const done = /^======== Module name 'fastify-comet\/client' was successfully resolved to '(.*?)'/.exec(line)
    if (done !== null) resolved[from] = relative(root, done[1])
  }
  t.same(resolved, {
    [join('test', 'fixtures', 'client-types', 'esm.mts')]: join('client', 'comet-client.d.mts'),
    [join('test', 'fixtures', 'client-types', 'cjs.cts')]: join('client', 'comet-client.d.ts')
  })
})
