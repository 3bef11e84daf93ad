// The browser client with several sources in one stream: messages with a key, one id per key, the
// JSON cursor sent on reconnect, and resets per key (see README, "Several sources in one stream").
import t from 'tap'
import type FastifyCometClient from '../client/comet-client.js'
import { fakeBrowser, recorder } from './fake-browser.js'

/** The cursor a frame's URL carries, parsed. */
function cursorOf (src: string): unknown {
  const value = new URL(src, 'http://localhost').searchParams.get('lastEventId')
  return value === null ? undefined : JSON.parse(value)
}

t.test('keyed messages: onMessage(message, id, key), one id per key, and the JSON cursor on reconnect', async t => {
  const browser = fakeBrowser({ random: 0 })
  const { events, ...handlers } = recorder()
  const stream = browser.window.FastifyComet.connect('/live', handlers)
  t.equal(browser.frame().src, '/live', 'no cursor yet')
  browser.control('open', { heartbeat: 20000, keys: ['chat', 'clock'] })
  t.same(stream.lastEventId, {}, 'a multiplexed stream, from the keys of its open control message')
  browser.deliver({ text: 'hi' }, 'e-1', 'cometMessage', 'chat')
  browser.deliver('12:00', undefined, 'cometMessage', 'clock') // a key without ids
  browser.deliver({ text: 'yo' }, 'e-2', 'cometMessage', 'chat')
  t.same(stream.lastEventId, { chat: 'e-2' })
  const copy = stream.lastEventId as Record<string, string>
  copy.chat = 'changed'
  t.same(stream.lastEventId, { chat: 'e-2' }, 'lastEventId is a copy')
  browser.frame().dispatch('load')
  browser.runTimer()
  t.same(cursorOf(browser.frame().src), { chat: 'e-2' }, 'the reconnect sends the JSON cursor of the ids known')
  t.match(browser.frame().src, /^\/live\?lastEventId=%7B%22chat%22%3A%22e-2%22%7D&since=1000$/,
    'URL-encoded, and ?since= for the keys without a position: the time since the last entry heard, plus a second')
  t.same(events.filter(event => Array.isArray(event) && event[0] === 'message'), [
    ['message', { text: 'hi' }, 'e-1', 'chat'],
    ['message', '12:00', undefined, 'clock'],
    ['message', { text: 'yo' }, 'e-2', 'chat']
  ])
})

t.test('a keyed message alone makes the stream multiplexed: the single id goes', async t => {
  const browser = fakeBrowser({ random: 0 })
  const stream = browser.window.FastifyComet.connect('/live', { onMessage () {}, lastEventId: 'old-single' })
  t.equal(stream.lastEventId, 'old-single')
  browser.deliver('x', 'a-1', 'cometMessage', 'alerts')
  t.same(stream.lastEventId, { alerts: 'a-1' })
})

t.test('lastEventId as an object: the first connection sends it as the JSON cursor', async t => {
  const browser = fakeBrowser()
  const stream = browser.window.FastifyComet.connect('/live?room=1', { onMessage () {}, lastEventId: { chat: 'c-7', alerts: 'a-3' } })
  t.same(cursorOf(browser.frame().src), { chat: 'c-7', alerts: 'a-3' })
  t.match(browser.frame().src, /^\/live\?room=1&lastEventId=/)
  t.same(stream.lastEventId, { chat: 'c-7', alerts: 'a-3' })
  const empty = fakeBrowser()
  const none = empty.window.FastifyComet.connect('/live', { onMessage () {}, lastEventId: {} })
  t.equal(empty.frame().src, '/live', 'an empty object: no cursor, every key starts live')
  t.same(none.lastEventId, {}, 'but the stream is known to be multiplexed')
})

t.test('a reset per key: onReset({ key, lastEventId }), and that key resumes from its new position', async t => {
  const browser = fakeBrowser({ random: 0 })
  const { events, ...handlers } = recorder()
  const resets: unknown[] = []
  const stream = browser.window.FastifyComet.connect('/live', {
    ...handlers,
    lastEventId: { chat: 'c-1', alerts: 'gone', clock: 'x' },
    onReset (info) { resets.push(info) }
  })
  browser.control('reset', { key: 'alerts', lastEventId: 'gone', id: 'a-9' })
  browser.control('reset', { key: 'clock', lastEventId: 'x' }) // a key with no position now
  t.same(resets, [{ key: 'alerts', lastEventId: 'gone' }, { key: 'clock', lastEventId: 'x' }])
  t.same(stream.lastEventId, { chat: 'c-1', alerts: 'a-9' })
  browser.frame().dispatch('load')
  browser.runTimer()
  t.same(cursorOf(browser.frame().src), { chat: 'c-1', alerts: 'a-9' })
})

t.test('a single-source stream is unchanged: no key, a plain id, onReset({ lastEventId })', async t => {
  const browser = fakeBrowser({ random: 0 })
  const { events, ...handlers } = recorder()
  const resets: unknown[] = []
  const stream = browser.window.FastifyComet.connect('/events', { ...handlers, onReset (info) { resets.push(info) } })
  browser.control('open', { heartbeat: 20000 })
  browser.deliver('a', '1')
  browser.control('reset', { lastEventId: '1', id: '5' })
  t.same(resets, [{ lastEventId: '1' }])
  t.equal(stream.lastEventId, '5')
  browser.frame().dispatch('load')
  browser.runTimer()
  t.equal(browser.frame().src, '/events?lastEventId=5')
  t.same(events.slice(0, 2), ['open', ['message', 'a', '1']])
})

t.test('connect() checks lastEventId and shared', async t => {
  const { window, frames } = fakeBrowser()
  const connect = (options: Record<string, unknown>) => () => window.FastifyComet.connect('/live', { onMessage () {}, ...options } as FastifyCometClient.ConnectOptions)
  for (const lastEventId of [7, null, ['a'], { chat: 7 }, { 'a b': 'x' }, { ['k'.repeat(65)]: 'x' }, { '': 'x' }]) {
    t.throws(connect({ lastEventId }), { name: 'TypeError' }, `lastEventId ${JSON.stringify(lastEventId)}`)
  }
  for (const shared of [1, 'yes', null]) {
    t.throws(connect({ shared }), { name: 'TypeError' }, `shared ${JSON.stringify(shared)}`)
  }
  t.equal(frames().length, 0, 'nothing was opened')
  window.FastifyComet.connect('/live', { onMessage () {}, shared: false, lastEventId: { 'chat_1-x': 'c' } })
  t.equal(frames().length, 1, 'valid options open the stream')
})
