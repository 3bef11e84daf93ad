// maxStreams: past the limit reply.comet() answers 503 with Retry-After and
// FST_COMET_TOO_MANY_STREAMS before anything is written, the refused source is released, and the
// server goes on answering everything else. Real sockets, one per client.
import t from 'tap'
import diagnostics from 'node:diagnostics_channel'
import type { CometPush } from '../types/index.js'
import { build, listen, open, deferred, type OpenStream } from './helpers.js'

const LIMIT = 100
const CLIENTS = 150

t.test(`maxStreams: ${LIMIT}: ${CLIENTS} clients get exactly ${LIMIT} streams and ${CLIENTS - LIMIT} 503s`, { timeout: 30000 }, async t => {
  const { app, logs } = await build(t, { padding: 0, maxStreams: LIMIT })
  const sources: CometPush[] = []
  app.get('/comet', (request, reply) => {
    const out = app.comet.push()
    sources.push(out)
    return reply.comet(out, 'cb')
  })
  app.get('/health', async () => ({ ok: true }))
  const origin = await listen(app)

  const clients: OpenStream[] = await Promise.all(Array.from({ length: CLIENTS }, () => open(`${origin}/comet`)))
  const streams = clients.filter(client => client.res.statusCode === 200)
  const refused = clients.filter(client => client.res.statusCode === 503)
  t.equal(streams.length, LIMIT, `${LIMIT} streams`)
  t.equal(refused.length, CLIENTS - LIMIT, `${CLIENTS - LIMIT} refusals`)

  for (const client of refused) await client.ended
  t.ok(refused.every(client => client.res.headers['retry-after'] === '5'), 'each refusal says Retry-After: 5 (the default)')
  t.ok(refused.every(client => /^application\/json/.test(String(client.res.headers['content-type']))), "each is Fastify's JSON error")
  const bodies = refused.map(client => JSON.parse(client.body()))
  t.ok(bodies.every(body => body.code === 'FST_COMET_TOO_MANY_STREAMS' && body.statusCode === 503), 'with the code and status')
  t.ok(refused.every(client => !client.body().includes('<html>')), 'nothing of a comet document')

  t.equal(sources.length, CLIENTS, 'every handler ran')
  t.equal(sources.filter(out => out.signal.aborted).length, CLIENTS - LIMIT, 'each refused source was released at once')

  // The admitted streams work: one push reaches its client.
  const live = sources.filter(out => !out.signal.aborted)
  t.equal(live.length, LIMIT)
  for (const out of live) out.push('hello')
  await Promise.all(streams.map(client => client.waitFor('0,"hello",')))
  t.pass('every admitted stream delivers')

  const health = await fetch(`${origin}/health`)
  t.same(await health.json(), { ok: true }, 'the server still answers other routes')

  t.match(app.comet.stats().streams, { open: LIMIT, opened: LIMIT, refused: CLIENTS - LIMIT }, 'stats() agrees')
  t.notOk(logs.some(line => line.level >= 50 && line.err?.code !== 'FST_COMET_TOO_MANY_STREAMS'), 'no other error logged')

  // A freed slot is taken again.
  const ended = deferred()
  const onEnd = (): void => ended.resolve()
  diagnostics.subscribe('fastify-comet:stream:end', onEnd)
  t.teardown(() => { diagnostics.unsubscribe('fastify-comet:stream:end', onEnd) })
  streams[0].req.destroy()
  await ended.promise
  const again = await open(`${origin}/comet`)
  t.equal(again.res.statusCode, 200, 'a client arriving after one left gets a stream')
  const over = await open(`${origin}/comet`)
  t.equal(over.res.statusCode, 503, 'and the next one is refused again')
  await over.ended
})

t.test('retryAfter sets the header, which a custom error handler sends too', async t => {
  const { app } = await build(t, { padding: 0, maxStreams: 1, retryAfter: 30 })
  const hold = deferred()
  app.setErrorHandler((err: { code?: string, statusCode?: number }, request, reply) => {
    reply.code(err.statusCode ?? 500).send({ custom: err.code })
  })
  app.get('/comet', (request, reply) => reply.comet(async function * () { await hold.promise; yield 'late' }, 'cb'))
  const origin = await listen(app)
  const first = await open(`${origin}/comet`)
  t.equal(first.res.statusCode, 200)
  const refused = await open(`${origin}/comet`)
  await refused.ended
  t.equal(refused.res.statusCode, 503)
  t.equal(refused.res.headers['retry-after'], '30')
  t.same(JSON.parse(refused.body()), { custom: 'FST_COMET_TOO_MANY_STREAMS' }, "the application's handler answered")
  hold.resolve()
  await first.ended
  t.equal(app.comet.stats().streams.refused, 1)
})
