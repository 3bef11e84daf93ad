// Messages that are ready together leave in few writes; a lone message is never held back.
import t from 'tap'
import { build, listen, open, messages, countWrites, loneMessageSource } from './helpers.js'

t.test('messages yielded in one go are coalesced into a few large writes', async t => {
  const { app } = await build(t, { padding: 0 })
  let writes = (): number => 0
  app.get('/comet', async (request, reply) => {
    writes = countWrites(reply.raw)
    async function * burst (): AsyncGenerator<string> {
      for (let i = 0; i < 1000; i++) yield `message ${i}`
    }
    await reply.comet(burst(), 'cb')
  })
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  const received = messages(stream.body(), 'cb')
  t.equal(received.length, 1000)
  t.equal(received[999], 'message 999')
  // The padding write, then 16 KiB batches (the last one partial), not one write per message
  t.ok(writes() <= 2 + Math.ceil(stream.body().length / 16384), `${writes()} writes for 1000 messages`)
})

t.test('a synchronous source is batched the same way', async t => {
  const { app } = await build(t, { padding: 0 })
  let writes = (): number => 0
  app.get('/comet', async (request, reply) => {
    writes = countWrites(reply.raw)
    await reply.comet(Array.from({ length: 1000 }, (_, i) => i), 'cb')
  })
  const res = await app.inject('/comet')
  t.equal(messages(res.body, 'cb').length, 1000)
  t.ok(writes() <= 2 + Math.ceil(res.body.length / 16384), `${writes()} writes for 1000 messages`)
})

t.test('a lone message is written before the source yields again', async t => {
  const { app } = await build(t, { padding: 0 })
  const lone = loneMessageSource()
  app.get('/comet', (request, reply) => reply.comet(lone.source(), 'cb'))
  const stream = await open(`${await listen(app)}/comet`)
  await stream.waitFor('0,"first",')
  t.notOk(stream.body().includes('second'), 'the second message was not produced yet')
  lone.release()
  await stream.ended
  t.same(messages(stream.body(), 'cb'), ['first', 'second'])
})
