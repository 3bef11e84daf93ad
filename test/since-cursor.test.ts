// `?since=MS`: a client with no position (the shipped client falling back from a stream that
// delivered nothing, not even its `open`) asks for what was published in the last MS milliseconds,
// then live. Channels with history answer it from the times they keep; a key or stream with an id
// resumes from the id; a window that reaches a message no longer held is a reset for that key.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, listen, open, replayWithControl } from './helpers.js'

const cursor = (ids: Record<string, string>): string => encodeURIComponent(JSON.stringify(ids))

t.test('a stream with since gets exactly what was published within the window, then live', async t => {
  const { app } = await build(t)
  const room = app.comet.channel<string>({ history: 100 })
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const url = `${await listen(app)}/comet`
  await room.publish('early-1')
  await room.publish('early-2')
  // The age of messages is the behaviour under test: a real gap between the early and the later
  // ones, long enough that the window (reaching back to its middle when the request leaves) still
  // covers the later ones however long the request takes to reach the route on a busy machine.
  const gapStart = performance.now()
  await sleep(1000)
  const gapEnd = performance.now()
  const later = [await room.publish('later-1'), await room.publish('later-2')]
  const since = Math.round(performance.now() - (gapStart + gapEnd) / 2)
  const client = await open(`${url}?since=${since}`)
  await client.waitFor('"later-2"')
  const live = await room.publish('live')
  await client.waitFor('"live"')
  client.req.destroy()
  t.same(replayWithControl(client.body(), 'cb'), [
    ['message', 'later-1', later[0]],
    ['message', 'later-2', later[1]],
    ['message', 'live', live]
  ])
})

t.test('a multiplexed stream: a key in the cursor resumes from its id, a key left out uses since', async t => {
  const { app } = await build(t)
  const chat = app.comet.channel<string>({ history: 10 })
  const alerts = app.comet.channel<string>({ history: 10 })
  app.get('/comet', (request, reply) => reply.comet({ chat, alerts }, 'cb'))
  const url = `${await listen(app)}/comet`
  const chatIds = [await chat.publish('c1'), await chat.publish('c2'), await chat.publish('c3')]
  const alertIds = [await alerts.publish('a1'), await alerts.publish('a2')]
  // since covers every message of both; chat's id wins for chat.
  const client = await open(`${url}?since=3600000&lastEventId=${cursor({ chat: chatIds[1] })}`)
  await client.waitFor('"a2"')
  await client.waitFor('"c3"')
  const live = await chat.publish('c4')
  await client.waitFor('"c4"')
  client.req.destroy()
  const calls = replayWithControl(client.body(), 'cb')
  t.same(calls.filter(call => call[3] === 'chat'), [['message', 'c3', chatIds[2], 'chat'], ['message', 'c4', live, 'chat']], 'chat: after its id')
  t.same(calls.filter(call => call[3] === 'alerts'), [['message', 'a1', alertIds[0], 'alerts'], ['message', 'a2', alertIds[1], 'alerts']], 'alerts: everything in the window')
  t.same(calls.filter(call => call[0] === 'control'), [], 'no reset')
})

t.test('a window reaching past what a history still holds: a reset for that key only, the others replay', async t => {
  const { app } = await build(t)
  const chat = app.comet.channel<string>({ history: 2 })
  const alerts = app.comet.channel<string>({ history: 10 })
  app.get('/comet', (request, reply) => reply.comet({ chat, alerts }, 'cb'))
  const url = `${await listen(app)}/comet`
  for (const text of ['c1', 'c2', 'c3']) await chat.publish(text) // c1 dropped
  const chatLast = await chat.position()
  const alertId = await alerts.publish('a1')
  const client = await open(`${url}?since=3600000`)
  await client.waitFor('"a1"')
  const live = await chat.publish('c4')
  await client.waitFor('"c4"')
  client.req.destroy()
  t.same(replayWithControl(client.body(), 'cb'), [
    ['control', 'reset', { key: 'chat', id: chatLast }],
    ['message', 'a1', alertId, 'alerts'],
    ['message', 'c4', live, 'chat']
  ], 'chat is reset to its newest id and goes on live; alerts replays')
})

t.test('a poll with since: what is in the window, and the poll ends', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  const room = app.comet.channel<string>({ history: 10 })
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const url = `${await listen(app)}/comet`
  const ids = [await room.publish('one'), await room.publish('two')]
  const client = await open(`${url}?transport=poll&since=3600000`)
  await client.ended
  t.same(replayWithControl(client.body(), 'cb'), [
    ['message', 'one', ids[0]],
    ['message', 'two', ids[1]],
    ['control', 'reconnect', { delay: 0 }]
  ])
})

t.test('an id wins over since, and since is ignored unless it is a non-negative integer', async t => {
  const { app } = await build(t, { pollTimeout: 60000 })
  const room = app.comet.channel<string>({ history: 10 })
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const url = `${await listen(app)}/comet`
  const first = await room.publish('one')
  const second = await room.publish('two')
  const withId = await open(`${url}?transport=poll&since=3600000`, { headers: { 'last-event-id': first } })
  await withId.ended
  t.same(replayWithControl(withId.body(), 'cb').filter(call => call[0] === 'message'), [['message', 'two', second]], 'Last-Event-ID: after it only')
  const notOurs = await open(`${url}?transport=poll&since=3600000&lastEventId=gone`)
  await notOurs.ended
  t.same(replayWithControl(notOurs.body(), 'cb')[0], ['control', 'reset', { lastEventId: 'gone', id: second }], 'an id that is not ours: a reset, not the window')
  const invalid = ['-1', '1.5', '1e9', '0x10', '%2B5', '%205', 'abc', '', '12345678901234567', '3600000&since=3600000']
  for (const [n, since] of invalid.entries()) {
    const client = await open(`${url}?since=${since}`)
    await client.waitFor('2,"open"')
    const live = await room.publish(`live ${n}`)
    await client.waitFor(`"live ${n}"`)
    client.req.destroy()
    t.same(replayWithControl(client.body(), 'cb'), [['message', `live ${n}`, live]], `since=${since}: live, nothing replayed`)
  }
})

t.test('sources without history ignore since: they start live', async t => {
  const { app } = await build(t)
  const room = app.comet.channel<string>()
  let context: object | undefined
  app.get('/comet', (request, reply) => reply.comet({
    room,
    fn: ctx => { context = ctx; return ['from the function'] }
  }, 'cb'))
  const url = `${await listen(app)}/comet`
  room.publish('before')
  const client = await open(`${url}?since=3600000`)
  await client.waitFor('"from the function"')
  room.publish('after')
  await client.waitFor('"after"')
  client.req.destroy()
  t.same(replayWithControl(client.body(), 'cb'), [['message', 'from the function', undefined, 'fn'], ['message', 'after', undefined, 'room']])
  t.notOk('since' in (context as object), 'a source function is told nothing of since')
})
