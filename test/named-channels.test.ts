// fastify.comet.channel({ name }): the same name gives back the same channel in one plugin
// instance; other settings for a name in use are refused, as are invalid channel options.
import t from 'tap'
import { build, listen, messages, open } from './helpers.js'

t.test('the same name gives back the same channel; unnamed channels are always new', async t => {
  const { app } = await build(t)
  const chat = app.comet.channel({ name: 'chat', history: 10 })
  t.equal(app.comet.channel({ name: 'chat', history: 10 }), chat)
  t.not(app.comet.channel({ name: 'news', history: 10 }), chat)
  t.not(app.comet.channel(), app.comet.channel())
})

t.test('other settings for a name in use fail with FST_COMET_INVALID_OPTION', async t => {
  const { app } = await build(t)
  app.comet.channel({ name: 'chat', history: 10, maxQueue: 64 })
  t.throws(() => app.comet.channel({ name: 'chat', history: 20, maxQueue: 64 }), { code: 'FST_COMET_INVALID_OPTION', message: /history/ })
  t.throws(() => app.comet.channel({ name: 'chat', history: 10 }), { code: 'FST_COMET_INVALID_OPTION', message: /maxQueue/ })
})

t.test('invalid channel options fail with FST_COMET_INVALID_OPTION', async t => {
  const { app } = await build(t)
  const invalid: Array<[string, unknown]> = [
    ['history', -1],
    ['history', 1.5],
    ['history', 1_000_001],
    ['history', '10'],
    ['name', ''],
    ['name', 42],
    ['name', 'x'.repeat(201)]
  ]
  for (const [key, value] of invalid) {
    t.throws(() => app.comet.channel({ [key]: value }), { code: 'FST_COMET_INVALID_OPTION' }, `${key}: ${String(value).slice(0, 20)}`)
  }
  t.throws(() => app.comet.channel({ history: 10, id: (m: unknown) => String(m) } as never), { code: 'FST_COMET_INVALID_OPTION', message: /ids itself/ }, 'history with id')
  t.throws(() => app.comet.push({ history: 10 } as never), { code: 'FST_COMET_INVALID_OPTION' }, 'a push source has no history')
})

t.test('a closed named channel is let go: the name starts afresh and streams on it get messages', async t => {
  const { app } = await build(t, { padding: 0 })
  const first = app.comet.channel<string>({ name: 'room', history: 10 })
  first.close()
  first.close() // a second close is harmless
  const second = app.comet.channel<string>({ name: 'room', history: 10 })
  t.not(second, first, 'a new channel, not the closed one')
  t.equal(app.comet.channel<string>({ name: 'room', history: 10 }), second, 'and the name gives it back from now on')
  app.get('/comet', (request, reply) => reply.comet(app.comet.channel<string>({ name: 'room', history: 10 }), 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  await second.publish('after the first was closed')
  second.close()
  await client.ended
  t.same(messages(client.body(), 'cb'), ['after the first was closed'])
})
