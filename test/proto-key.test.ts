// A message with an own "__proto__" key reaches the page with that key as an own property. In a
// JavaScript object literal, `{"__proto__": …}` would set the prototype instead, so the key would
// vanish (and the object inherit whatever the value holds). This runs without a browser: the
// scripts are replayed in a VM context, as test/helpers.ts does for every document.
import t from 'tap'
import { build, messages } from './helpers.js'

const hasOwn = (value: unknown, key: string): boolean => Object.prototype.hasOwnProperty.call(value, key)

t.test('an own "__proto__" key arrives as an own key with its value, at any depth', async t => {
  const { app } = await build(t, { padding: 0 })
  const top = JSON.parse('{"__proto__":{"polluted":true},"a":1}') as Record<string, unknown>
  const nested = JSON.parse('{"outer":[{"__proto__":{"polluted":true}}]}') as Record<string, unknown>
  t.ok(hasOwn(top, '__proto__'), 'the message itself has an own "__proto__" key')
  const channel = app.comet.channel<unknown>()
  app.get('/iterable', (request, reply) => reply.comet([top, nested, 'after'], 'cb'))
  app.get('/channel', (request, reply) => reply.comet(channel, 'cb'))

  const res = await app.inject('/iterable')
  const [first, second, third] = messages(res.body, 'cb') as Array<Record<string, unknown>>
  t.ok(hasOwn(first, '__proto__'), '"__proto__" is an own key on the page')
  t.same(Object.getOwnPropertyDescriptor(first, '__proto__')?.value, { polluted: true }, 'with its value')
  t.equal(first.polluted, undefined, 'nothing inherited from it')
  t.equal(first.a, 1, 'the other keys are there')
  const inner = (second.outer as Array<Record<string, unknown>>)[0]
  t.ok(hasOwn(inner, '__proto__'), 'a nested "__proto__" key is an own key too')
  t.equal(inner.polluted, undefined, 'and sets no prototype')
  t.equal(third, 'after', 'the messages after it arrive')
  t.notOk(res.body.includes('0,{"__proto__"'), 'never written as an object literal')

  // A channel encodes each message once for every subscriber: the same rule holds there.
  const client = app.inject('/channel')
  while (channel.size === 0) await new Promise(setImmediate) // the request reached the handler
  channel.publish(top)
  channel.close()
  const [viaChannel] = messages((await client).body, 'cb') as Array<Record<string, unknown>>
  t.ok(hasOwn(viaChannel, '__proto__'), 'through a channel, "__proto__" is an own key')
  t.equal(viaChannel.polluted, undefined, 'and sets no prototype')
})
