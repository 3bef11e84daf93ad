// The `clientPath` option: the plugin serves the browser client (client/comet-client.js) there, as
// is, and only when asked. The client's own behaviour is in client.test.ts.
import t from 'tap'
import vm from 'node:vm'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { build } from './helpers.js'

const CLIENT_FILE = join(__dirname, '..', 'client', 'comet-client.js')
const CLIENT_SOURCE = readFileSync(CLIENT_FILE, 'utf8')

t.test('clientPath serves the client script', async t => {
  const { app } = await build(t, { clientPath: '/comet/client.js' })
  const res = await app.inject('/comet/client.js')
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/javascript\b/)
  t.equal(res.body, CLIENT_SOURCE, 'the packaged file, as is')
  t.doesNotThrow(() => new vm.Script(res.body, { filename: 'comet-client.js' }), 'parses')
})

t.test('without clientPath there is no client route', async t => {
  const { app } = await build(t)
  t.equal((await app.inject('/comet/client.js')).statusCode, 404)
})

t.test('an invalid clientPath rejects register', async t => {
  for (const clientPath of ['client.js', 42, '', '/a b.js', '/x?y', 'http://example.com/client.js', null]) {
    await t.rejects(build(t, { clientPath } as never), { code: 'FST_COMET_INVALID_OPTION' }, JSON.stringify(clientPath))
  }
})
