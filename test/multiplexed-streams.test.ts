// Several sources in one stream: `reply.comet({ a: room, b: other, clock: fn }, callback)`. Each
// message reaches the page as callback(message, id, key); per key its own order, ids, maxQueue and
// resume, under one cursor; a source that ends leaves the others streaming, one that fails ends
// the document; channel messages are still encoded once, however many streams carry them.
import t, { type Test } from 'tap'
import type { ServerResponse } from 'node:http'
import { build, listen, open, replayWithControl, replayDocument, firstBlockedWrite, logged, turns, withoutHelper, onWrite } from './helpers.js'
import type { CometHistoryChannel, CometSources } from '../types/index.js'

const KEYS = ['a', 'b', 'c'] as const

async function channels (t: Test, history = 100): Promise<{ app: Awaited<ReturnType<typeof build>>['app'], rooms: Record<string, CometHistoryChannel<string>> }> {
  const { app } = await build(t, { padding: 0, maxBytes: Infinity })
  const rooms = Object.fromEntries(KEYS.map(key => [key, app.comet.channel<string>({ history })]))
  return { app, rooms }
}

async function publish (room: CometHistoryChannel<string>, key: string, from: number, to: number): Promise<string[]> {
  const ids: string[] = []
  for (let n = from; n <= to; n++) ids.push(await room.publish(`${key}${n}`))
  return ids
}

interface CometSubscriberLike { deliver: (entry: string) => void, end: (reason: string) => void }

const cursor = (ids: Record<string, string>): string => `?lastEventId=${encodeURIComponent(JSON.stringify(ids))}`

/** The messages of one key, in the order the page got them. */
function ofKey (calls: unknown[][], key: string): unknown[] {
  return calls.filter(call => call[0] === 'message' && call[3] === key).map(call => call[1])
}

t.test('each message reaches the callback with its id and key; the open message lists the keys', async t => {
  const { app } = await build(t, { padding: 0 })
  const room = app.comet.channel<string>({ history: 10 })
  await room.publish('before')
  app.get('/comet', (request, reply) => reply.comet({ room, list: ['x', 'y'] }, 'cb'))
  const url = `${await listen(app)}/comet`
  const client = await open(url)
  await client.waitFor('"y"')
  const id = await room.publish('live')
  await client.waitFor(id)
  room.close()
  await client.ended
  const replayed = replayDocument(client.body(), 'cb', { liveness: true })
  t.same(replayed.controls[0], ['open', { heartbeat: 20000, keys: ['room', 'list'] }])
  t.same(replayed.calls, [['x', undefined, 'list'], ['y', undefined, 'list'], ['live', id, 'room']])
})

t.test('a single source is called as before: no key, no extra arguments', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/single', (request, reply) => reply.comet(['x'], 'cb'))
  const client = await open(`${await listen(app)}/single`)
  await client.ended
  t.same(replayDocument(client.body(), 'cb').calls, [['x']])
})

t.test('resuming three history channels and a generator with a cursor in the middle of each: exactly the rest of each, then live', async t => {
  const { app, rooms } = await channels(t)
  const ids: Record<string, string[]> = {}
  for (const key of KEYS) ids[key] = await publish(rooms[key], key, 1, 10)
  const seen: unknown[] = []
  app.get('/comet', (request, reply) => reply.comet({
    ...rooms,
    gen: ({ lastEventId }) => { seen.push(lastEventId); return ['g1', 'g2'] }
  }, 'cb'))
  const url = `${await listen(app)}/comet`
  const client = await open(url + cursor({ a: ids.a[2], b: ids.b[6], c: ids.c[9], gen: 'g-5', other: 'x-1' }))
  await client.waitFor(`"${ids.b[9]}"`)
  const live = await Promise.all(KEYS.map(key => rooms[key].publish(`${key}-live`)))
  await client.waitFor(`"${live[2]}"`)
  for (const key of KEYS) rooms[key].close()
  await client.ended
  const calls = replayWithControl(client.body(), 'cb')
  t.same(ofKey(calls, 'a'), [...Array.from({ length: 7 }, (_, i) => `a${i + 4}`), 'a-live'], 'a: after its 3rd')
  t.same(ofKey(calls, 'b'), ['b8', 'b9', 'b10', 'b-live'], 'b: after its 7th')
  t.same(ofKey(calls, 'c'), ['c-live'], 'c: up to date, only live')
  t.same(ofKey(calls, 'gen'), ['g1', 'g2'])
  t.same(seen, ['g-5'], 'a source function gets its own key\'s id')
  t.same(calls.filter(call => call[0] === 'control'), [], 'no reset for anyone')
  const liveIds = calls.filter(call => call[1] === 'a-live').map(call => call[2])
  t.same(liveIds, [live[0]], 'live messages carry their channel\'s ids')
})

t.test('a key whose position is out of reach gets its own reset; the others resume normally', async t => {
  const { app } = await build(t, { padding: 0 })
  const small = app.comet.channel<string>({ history: 3 })
  const big = app.comet.channel<string>({ history: 100 })
  const smallIds = await publish(small, 's', 1, 10)
  const bigIds = await publish(big, 'b', 1, 10)
  app.get('/comet', (request, reply) => reply.comet({ small, big }, 'cb'))
  const client = await open(`${await listen(app)}/comet` + cursor({ small: smallIds[1], big: bigIds[7] }))
  await client.waitFor(`"${bigIds[9]}"`)
  small.close()
  big.close()
  await client.ended
  const calls = replayWithControl(client.body(), 'cb')
  t.same(calls.filter(call => call[0] === 'control'), [['control', 'reset', { key: 'small', lastEventId: smallIds[1], id: smallIds[9] }]])
  t.same(ofKey(calls, 'small'), [], 'nothing replayed for the key that was reset')
  t.same(ofKey(calls, 'big'), ['b9', 'b10'])
})

t.test('keys the cursor leaves out start live; a cursor that is not ours resets every key with history', async t => {
  const { app, rooms } = await channels(t, 10)
  const ids: Record<string, string[]> = {}
  for (const key of KEYS) ids[key] = await publish(rooms[key], key, 1, 3)
  app.get('/comet', (request, reply) => reply.comet({ ...rooms, list: ['l'] }, 'cb'))
  const url = `${await listen(app)}/comet`

  const partial = await open(url + cursor({ a: ids.a[0] }))
  await partial.waitFor(`"${ids.a[2]}"`)
  const garbage = [['a', 'b'], 'not json', '["a"]', '{"a":1}', 'null', '{"a":"x"', '\u00e9', 'x'.repeat(9000)]
  // A repeated parameter names no cursor either.
  const query = (value: string | string[]): string => [value].flat().map(one => `lastEventId=${encodeURIComponent(one)}`).join('&')
  const broken = await Promise.all(garbage.map(value => open(`${url}?${query(value)}`)))
  for (const client of broken) await client.waitFor('"l"')
  await Promise.all(KEYS.map(key => rooms[key].publish(`${key}-live`)))
  for (const key of KEYS) rooms[key].close()

  await partial.ended
  const calls = replayWithControl(partial.body(), 'cb')
  t.same(ofKey(calls, 'a'), ['a2', 'a3', 'a-live'])
  t.same(ofKey(calls, 'b'), ['b-live'], 'no position for b: live')
  t.same(calls.filter(call => call[0] === 'control'), [])

  for (const [i, client] of broken.entries()) {
    await client.ended
    const resets = replayWithControl(client.body(), 'cb').filter(call => call[0] === 'control')
    t.same(resets, KEYS.map(key => ['control', 'reset', { key, id: ids[key][2] }]), `${JSON.stringify(garbage[i]).slice(0, 20)}: a reset per channel, none for the list`)
  }
})

t.test('a source that finishes leaves the others streaming; the document ends with the last', async t => {
  const { app } = await build(t, { padding: 0 })
  const room = app.comet.channel<string>()
  app.get('/comet', (request, reply) => reply.comet({ room, list: ['done soon'] }, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  await client.waitFor('done soon')
  await turns(5)
  t.equal(room.size, 1, 'the channel still feeds the stream')
  room.publish('after')
  await client.waitFor('after')
  room.close()
  await client.ended
  t.same(replayWithControl(client.body(), 'cb'), [['message', 'done soon', undefined, 'list'], ['message', 'after', undefined, 'room']])
})

t.test('a source that fails ends the whole document, logged once, and releases the others', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  const room = app.comet.channel<string>()
  let aborted = false
  app.get('/comet', (request, reply) => reply.comet({
    room,
    waiting: ({ signal }) => (async function * () {
      await new Promise(resolve => signal.addEventListener('abort', resolve))
      aborted = true
    }()),
    broken: async function * () { yield 'one'; throw new Error('boom') }
  }, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  await client.ended
  t.equal(room.size, 0, 'unsubscribed from the channel')
  t.ok(aborted, 'the other source function\'s signal aborted')
  const errors = logs.filter(line => line.level >= 50)
  t.equal(errors.length, 1, 'logged once')
  t.equal(errors[0].err?.message, 'boom')
})

t.test('refused before a byte is written, every source released: empty, too many or bad keys, a bad source, id with a channel', async t => {
  const { app } = await build(t, { padding: 0 })
  const released: string[] = []
  const cases: Array<[string, CometSources]> = [
    ['65 keys', Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, ['x']]))],
    ['a key with a space', { ok: ['x'], 'bad key': ['x'] }],
    ['a key of 65 characters', { ok: ['x'], ['k'.repeat(65)]: ['x'] }],
    ['a string source', { ok: ['x'], bad: 'text' as unknown as string[] }]
  ]
  for (const [i, [name, sources]] of cases.entries()) {
    app.get(`/case${i}`, (request, reply) => {
      // A push source first, opened before the refusal, and one after it: both must let go.
      const before = app.comet.push()
      const after = app.comet.push()
      before.signal.addEventListener('abort', () => released.push(`${name} before`))
      after.signal.addEventListener('abort', () => released.push(`${name} after`))
      return reply.comet({ before, ...sources, after }, 'cb')
    })
  }
  app.get('/empty', (request, reply) => reply.comet({}, 'cb'))
  const room = app.comet.channel()
  app.get('/id', (request, reply) => reply.comet({ list: ['x'], room }, { callback: 'cb', id: () => 'i' }))
  for (const [name, url] of [...cases.map(([name], i) => [name, `/case${i}`]), ['empty', '/empty']]) {
    const response = await app.inject(url)
    t.equal(response.statusCode, 500, name)
    t.equal(response.json().code, 'FST_COMET_INVALID_SOURCE', name)
  }
  t.same(released.sort(), cases.flatMap(([name]) => [`${name} after`, `${name} before`]).sort(), 'each push source released')
  const response = await app.inject('/id')
  t.equal(response.json().code, 'FST_COMET_INVALID_OPTION')
  t.match(response.json().message, /key "room"/)
  t.equal(room.size, 0)
})

t.test('a slow client during the replay of three channels: paced by backpressure, nothing lost, none overflows', async t => {
  const { app, rooms } = await channels(t, 2000)
  const payload = 'x'.repeat(2000)
  for (const key of KEYS) for (let i = 0; i < 2000; i++) await rooms[key].publish(`${key}${i} ${payload}`)
  let raw!: ServerResponse
  let blocked!: Promise<void>
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    blocked = firstBlockedWrite(raw)
    return reply.comet(rooms, 'cb')
  })
  const epochOf = async (key: string): Promise<string> => (await rooms[key].position()).replace(/-\d+$/, '-0')
  const from = Object.fromEntries(await Promise.all(KEYS.map(async key => [key, await epochOf(key)])))
  const client = await open(`${await listen(app)}/comet` + cursor(from))
  client.res.pause()
  await blocked
  await turns(50)
  t.ok(raw.writableNeedDrain, 'the server waits for the client')
  client.res.resume()
  for (const key of KEYS) await client.waitFor(`${key}1999 `)
  for (const key of KEYS) rooms[key].close()
  await client.ended
  const calls = replayWithControl(client.body(), 'cb')
  for (const key of KEYS) {
    const got = ofKey(calls, key) as string[]
    t.equal(got.length, 2000, `${key}: all of it`)
    t.ok(got.every((message, i) => message.startsWith(`${key}${i} `)), `${key}: in order`)
  }
})

t.test('a key that falls behind its own maxQueue ends the document, logged with its key', async t => {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const tight = app.comet.channel<string>({ maxQueue: 2 })
  const loose = app.comet.channel<string>({ maxQueue: 100000 })
  let raw!: ServerResponse
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    return reply.comet({ loose, tight }, 'cb')
  })
  const client = await open(`${await listen(app)}/comet`)
  client.res.pause()
  const payload = 'y'.repeat(64 * 1024)
  // Once the socket has stayed full for whole turns, the third message of the tight key is one too many.
  while (tight.size > 0) {
    loose.publish(payload)
    await turns(3)
    if (!raw.writableNeedDrain) continue
    for (let i = 0; i < 3; i++) tight.publish(`t${i}`)
  }
  const warning = await logged(logs, line => line.msg.startsWith('comet subscriber fell too far behind'))
  t.same({ key: warning.key, maxQueue: warning.maxQueue }, { key: 'tight', maxQueue: 2 })
  t.equal(loose.size, 0, 'the other channel let go of the stream too')
})

for (const [burst, when] of [[5, 'once it is behind'], [9, 'at once past 4 times it']] as const) {
  t.test(`a burst of ${burst} over one key's maxQueue of 2 while the socket is full ends the document ${when}`, async t => {
    const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
    const tight = app.comet.channel<string>({ maxQueue: 2 })
    const loose = app.comet.channel<string>({ maxQueue: 100000 })
    const sizes: number[] = []
    app.get('/comet', (request, reply) => {
      // Each burst comes in the tick of a write that found the socket full after it had drained:
      // within that tick a burst may run past maxQueue, up to 4 times it; once the socket stayed
      // full for a whole turn, the queue counts.
      onWrite(reply.raw, (chunk, ok, wasBlocked) => {
        if (ok || wasBlocked) return
        queueMicrotask(() => {
          for (let i = 0; i < burst; i++) tight.publish(`t${i}`)
          sizes.push(tight.size)
        })
      })
      return reply.comet({ loose, tight }, 'cb')
    })
    const client = await open(`${await listen(app)}/comet`)
    client.res.pause()
    const payload = 'y'.repeat(64 * 1024)
    const warned = logged(logs, line => line.msg.startsWith('comet subscriber fell too far behind'))
    let done = false
    warned.then(() => { done = true }, () => {})
    const warnedYet = (): boolean => done
    // Until the socket stays full for a turn after a burst (a drain in between starts afresh).
    while (!warnedYet()) {
      if (tight.size > 0) loose.publish(payload)
      await turns(1)
    }
    if (burst === 5) t.ok(sizes.length > 0 && sizes.every(size => size === 1), 'never ended within the tick of a burst')
    else t.same(sizes, [0], 'ended during the first burst')
    t.same({ key: (await warned).key, maxQueue: (await warned).maxQueue }, { key: 'tight', maxQueue: 2 })
    t.equal(tight.size + loose.size, 0)
  })
}

t.test('the wire: a key entry wherever the key changes within a script, none for a single source', async t => {
  const { app } = await build(t, { padding: 0, heartbeat: 0 })
  app.get('/comet', (request, reply) => reply.comet({ a: ['1', '2'], b: ['3'] }, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  await client.ended
  t.match(withoutHelper(client.body()), /^<html><body><script nonce="\w+">__fastifyComet\(\[3,"a",0,"1",0,"2",3,"b",0,"3",\]\);<\/script>$/)
})

t.test('a feed that delivers after its stream ended is ignored', async t => {
  const { app } = await build(t, { padding: 0 })
  let late!: CometSubscriberLike
  const lingering = {
    [Symbol.for('fastify-comet.feed')]: () => ({
      maxQueue: 10,
      start (subscriber: CometSubscriberLike) { late = subscriber; subscriber.end('done') },
      stop () {}
    })
  }
  app.get('/comet', (request, reply) => reply.comet({ lingering, list: ['x'] } as unknown as CometSources, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  await client.ended
  late.deliver('0,"late",')
  t.same(replayWithControl(client.body(), 'cb'), [['message', 'x', undefined, 'list']])
})

t.test('a push source that overflowed before the stream started ends the document, logged with its key', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => {
    const early = app.comet.push<string>({ maxQueue: 1 })
    early.push('1')
    early.push('2')
    return reply.comet({ list: ['x'], early }, 'cb')
  })
  const client = await open(`${await listen(app)}/comet`)
  await client.ended
  const warning = await logged(logs, line => line.msg.startsWith('comet subscriber fell too far behind'))
  t.same({ key: warning.key, maxQueue: warning.maxQueue }, { key: 'early', maxQueue: 1 })
  t.match(replayWithControl(client.body(), 'cb').at(-1), ['control', 'reconnect', { delay: 'backoff' }])
})

t.test('a channel message is encoded once however many multiplexed streams carry it', async t => {
  const { app } = await build(t, { padding: 0 })
  const room = app.comet.channel<{ toJSON: () => string }>({ history: 10 })
  const other = app.comet.channel<string>()
  app.get('/comet', (request, reply) => reply.comet({ room, other }, 'cb'))
  const url = `${await listen(app)}/comet`
  const clients = await Promise.all(Array.from({ length: 50 }, () => open(url)))
  await turns(5)
  t.equal(room.size, 50)
  let encoded = 0
  const id = await room.publish({ toJSON: () => { encoded++; return 'hello' } })
  for (const client of clients) await client.waitFor(id)
  t.equal(encoded, 1, 'serialized once for 50 streams')
  room.close()
  other.close()
  for (const client of clients) {
    await client.ended
    t.same(replayWithControl(client.body(), 'cb'), [['message', 'hello', id, 'room']])
  }
})

t.test('position(): a page rendered with it gets everything published after, exactly once', async t => {
  const { app } = await build(t, { padding: 0 })
  const room = app.comet.channel<string>({ history: 50 })
  const plain = app.comet.channel<string>()
  t.equal(await plain.position(), undefined, 'no history, no position')
  const empty = await room.position()
  t.match(empty, /^[0-9a-f]{12}-0$/, 'an empty channel: the start of its epoch')
  await room.publish('one')
  const rendered = await room.position()
  await room.publish('two')
  await room.publish('three')
  app.get('/comet', (request, reply) => reply.comet({ room }, 'cb'))
  const url = `${await listen(app)}/comet`
  const fromRender = await open(url + cursor({ room: rendered }))
  const fromEmpty = await open(url + cursor({ room: empty }))
  await fromRender.waitFor('"three"')
  await fromEmpty.waitFor('"three"')
  room.close()
  await Promise.all([fromRender.ended, fromEmpty.ended])
  t.same(ofKey(replayWithControl(fromRender.body(), 'cb'), 'room'), ['two', 'three'])
  t.same(ofKey(replayWithControl(fromEmpty.body(), 'cb'), 'room'), ['one', 'two', 'three'])
})
