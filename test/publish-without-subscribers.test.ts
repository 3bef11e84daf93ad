// publish() throws FST_COMET_UNSERIALIZABLE_MESSAGE for a message JSON cannot represent, as the
// README and the types say, whether or not the channel has a subscriber at that moment: a
// programming error must not depend on who happens to be listening.
import t from 'tap'
import { build } from './helpers.js'

const circular: Record<string, unknown> = {}
circular.self = circular

const UNSERIALIZABLE: Array<[string, unknown]> = [
  ['a BigInt', 10n],
  ['a circular object', circular],
  ['undefined', undefined],
  ['a function', () => {}],
  ['a throwing toJSON', { toJSON () { throw new Error('no') } }]
]

t.test('publish() on a channel with no subscriber throws for an unserializable message', async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel<unknown>()
  t.equal(channel.size, 0, 'nobody is subscribed')
  for (const [name, message] of UNSERIALIZABLE) {
    t.throws(() => channel.publish(message), { code: 'FST_COMET_UNSERIALIZABLE_MESSAGE' }, name)
  }
  t.doesNotThrow(() => channel.publish({ fine: true }), 'a serializable message is accepted')
})

t.test('and for a closed channel', async t => {
  const { app } = await build(t, { padding: 0 })
  const channel = app.comet.channel<unknown>()
  channel.close()
  t.throws(() => channel.publish(10n), { code: 'FST_COMET_UNSERIALIZABLE_MESSAGE' })
})
