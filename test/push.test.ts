// Push sources: callback-style code pushes messages, reply.comet() writes them out.
import t from 'tap'
import { once } from 'node:events'
import { CometPush } from '../lib/push.js'
import { build, listen, open, messages, replay, firstBlockedWrite } from './helpers.js'

t.test('what is pushed before and after reply.comet() arrives in order; end() ends cleanly', async t => {
  const { app } = await build(t, { padding: 0 })
  const out = app.comet.push<string>()
  t.equal(out.push('early'), true)
  app.get('/comet', (request, reply) => reply.comet(out, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  await client.waitFor('early')
  t.equal(out.push('late'), true)
  out.end()
  await client.ended
  t.same(messages(client.body(), 'cb'), ['early', 'late'])
  t.equal(out.push('after end'), false, 'nothing more is taken after end()')
})

t.test('error() ends the stream and logs the error once', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const out = new CometPush<number>({ id: n => String(n) })
  app.get('/comet', (request, reply) => reply.comet(out, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  out.push(1)
  out.error(new Error('producer failed'))
  await client.ended
  t.same(replay(client.body(), 'cb'), [[1, '1']])
  const errors = logs.filter(line => line.level >= 50)
  t.equal(errors.length, 1)
  t.match(errors[0].err?.message, /producer failed/)
})

t.test('end() before reply.comet() still delivers what was pushed', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => {
    const out = app.comet.push()
    out.push({ a: 1 })
    out.end()
    return reply.comet(out, 'cb')
  })
  const res = await app.inject('/comet')
  t.same(messages(res.body, 'cb'), [{ a: 1 }])
})

t.test('when the client leaves, push() returns false and the signal aborts', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const out = app.comet.push<string>()
  let settled!: Promise<void>
  app.get('/comet', (request, reply) => {
    settled = reply.comet(out, 'cb')
    return settled
  })
  const client = await open(`${await listen(app)}/comet`)
  out.push('hello')
  await client.waitFor('hello')
  client.req.destroy()
  await once(out.signal, 'abort')
  await settled
  t.equal(out.push('nobody listens'), false)
  t.notOk(logs.some(line => line.level >= 40))
})

t.test('a push source serves one stream only', async t => {
  const { app } = await build(t, { padding: 0 })
  const out = app.comet.push()
  app.get('/comet', (request, reply) => reply.comet(out, 'cb'))
  const first = await open(`${await listen(app)}/comet`)
  const second = await app.inject('/comet')
  t.equal(second.statusCode, 500)
  t.equal(second.json().code, 'FST_COMET_SOURCE_CONSUMED')
  out.end()
  await first.ended
})

t.test('a client that stops reading is ended past maxQueue, with a warning', async t => {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const out = app.comet.push<string>({ maxQueue: 8 })
  let settled!: Promise<void>
  let blocked!: Promise<void>
  app.get('/comet', (request, reply) => {
    blocked = firstBlockedWrite(reply.raw)
    settled = reply.comet(out, 'cb')
    return settled
  })
  const client = await open(`${await listen(app)}/comet`)
  client.res.pause()
  const payload = 'q'.repeat(8192)
  const socket = { full: false }
  blocked.then(() => { socket.full = true })
  while (!socket.full) {
    out.push(payload)
    await new Promise(setImmediate)
  }
  // The socket is full: what follows queues up until the stream gives up on this client. Pushed
  // in one tick, a burst may run up to 4 x maxQueue ahead before 'drain' had its chance.
  let pushed = 0
  while (out.push(payload)) pushed++
  t.ok(pushed <= 4 * 8, `${pushed} more were taken before the stream ended`)
  await settled
  t.ok(out.signal.aborted)
  t.ok(logs.some(line => line.level === 40 && /fell too far behind/.test(line.msg)))
  client.req.destroy()
})

t.test('pushing before reply.comet() is bounded by maxQueue too', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const out = app.comet.push<number>({ maxQueue: 4 })
  for (let i = 0; i < 100; i++) out.push(i)
  app.get('/comet', (request, reply) => reply.comet(out, 'cb'))
  const res = await app.inject('/comet')
  // Replayed at once into the stream, so the queue overflows on the fifth before any write.
  t.same(messages(res.body, 'cb'), [0, 1, 2, 3])
  t.ok(logs.some(line => line.level === 40 && /fell too far behind/.test(line.msg)))
})

t.test('error() without a reason still fails the stream; a second end or error is ignored', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => {
    const out = app.comet.push()
    out.push('before')
    out.error(undefined)
    out.end()
    out.error(new Error('too late'))
    return reply.comet(out, 'cb')
  })
  const res = await app.inject('/comet')
  t.same(messages(res.body, 'cb'), ['before'])
  const errors = logs.filter(line => line.level >= 50)
  t.equal(errors.length, 1)
  t.match(errors[0].err?.message, /push source failed/)
})

t.test('a push source whose stream ends while subscribing learns it at once', async t => {
  const { app } = await build(t, { padding: 0 })
  const overflowing = app.comet.push<number>({ maxQueue: 2 })
  for (let i = 0; i < 5; i++) overflowing.push(i)
  const ended = app.comet.push<number>()
  ended.push(1)
  ended.end()
  app.get('/overflow', (request, reply) => reply.comet(overflowing, 'cb'))
  app.get('/ended', (request, reply) => reply.comet(ended, 'cb'))
  t.same(messages((await app.inject('/overflow')).body, 'cb'), [0, 1])
  t.ok(overflowing.signal.aborted, 'the signal aborts when the stream overflowed during subscribe')
  t.equal(overflowing.push(9), false, 'and push() says there is no point in going on')
  t.same(messages((await app.inject('/ended')).body, 'cb'), [1])
  t.ok(ended.signal.aborted)
})

t.test('a push source is released when its stream never starts', async t => {
  const { app } = await build(t, { padding: 0 })
  const forHead = app.comet.push<string>()
  const withId = app.comet.push<string>()
  app.get('/head', (request, reply) => reply.comet(forHead, 'cb'))
  app.get('/id', (request, reply) => reply.comet(withId, { callback: 'cb', id: message => message }))
  const head = await app.inject({ method: 'HEAD', url: '/head' })
  t.equal(head.statusCode, 200)
  t.ok(forHead.signal.aborted, 'a HEAD request releases it: nobody will read the body')
  t.equal(forHead.push('nobody'), false)
  const id = await app.inject('/id')
  t.equal(id.statusCode, 500)
  t.match(id.json(), { code: 'FST_COMET_INVALID_OPTION', message: /channel or push source/ })
  t.ok(withId.signal.aborted, 'a per-call id option is refused: ids belong to the push source')
})
