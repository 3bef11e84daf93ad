// fastify.comet.channel({ name }): the same name gives back the same channel in one plugin
// instance; other settings for a name in use are refused, as are invalid channel options.
import t from 'tap'
import { build, listen, messages, open } from './helpers.js'
import { CometChannel } from '../lib/channel.js'

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

// The contract with a broker (fastify-comet/redis implements it; its own tests run against a real
// redis-server). Here a broker that keeps channels in process shows what the plugin asks of it.
t.test('with a broker, named channels come from it; unnamed ones stay in process; it closes with Fastify', async t => {
  const asked: Array<[string, unknown]> = []
  let closed = 0
  const broker = {
    async connect () {
      return {
        channel: (name: string, settings: { history: number, maxQueue: number }) => {
          asked.push([name, settings])
          return new CometChannel({ history: settings.history, maxQueue: settings.maxQueue })
        },
        close: () => { closed++ }
      }
    }
  }
  const { app } = await build(t, { broker })
  const chat = app.comet.channel({ name: 'chat', history: 10, historyTtl: 60000 })
  t.equal(app.comet.channel({ name: 'chat', history: 10, historyTtl: 60000 }), chat, 'asked once per name')
  app.comet.channel({ history: 5 })
  t.same(asked, [['chat', { maxQueue: 1024, id: undefined, history: 10, historyTtl: 60000 }]], 'with every setting it must apply')
  t.throws(() => app.comet.channel({ name: 'plain' }), { code: 'FST_COMET_INVALID_OPTION', message: /"history".*broker/ })
  t.same(app.comet.stats().channels, { open: 2, subscribers: 0 })
  await app.close()
  t.equal(closed, 1)
})

t.test('a broker option that is not a broker fails register with FST_COMET_INVALID_OPTION', async t => {
  for (const broker of [{}, null, 'redis://127.0.0.1', { connect: 1 }]) {
    await t.rejects(build(t, { broker: broker as never }), { code: 'FST_COMET_INVALID_OPTION', message: /"broker"/ })
  }
})
