// The built package loads every way a user may load it.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { resolve } from 'node:path'

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

t.test('the built plugin decorates the reply in a real app', async t => {
  const out = run(['-e', `
    const app = require('fastify')()
    app.register(require('fastify-comet'), { padding: 0 })
    app.get('/', (req, reply) => reply.comet(['a'], 'cb'))
    app.inject('/').then(res => { console.log(res.body); return app.close() })`])
  t.match(out, /^<html><body><script nonce="[0-9a-f]{32}">cb\("a"\);<\/script>$/)
})
