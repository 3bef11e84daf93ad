// Channels that remember: with `history`, the channel gives every message an id; a client that
// reconnects with its last id gets exactly what it missed, then the live messages, each once and
// in order; when that cannot be done (an id older than the history, of another epoch, or not an
// id at all), a reset control message comes first, never a silent gap.
import t, { type Test } from 'tap'
import type { ServerResponse } from 'node:http'
import { build, listen, open, replay, replayWithControl, messages, firstBlockedWrite, turns } from './helpers.js'
import type { CometHistoryChannel } from '../types/index.js'

async function serve (t: Test, history: number, maxBytes = Infinity): Promise<{ url: string, channel: CometHistoryChannel<number>, raws: ServerResponse[] }> {
  const { app } = await build(t, { padding: 0, maxBytes })
  const channel = app.comet.channel<number>({ history })
  const raws: ServerResponse[] = []
  app.get('/comet', (request, reply) => {
    raws.push(reply.raw)
    return reply.comet(channel, 'cb')
  })
  return { url: `${await listen(app)}/comet`, channel, raws }
}

async function publishAll (channel: CometHistoryChannel<number>, from: number, to: number): Promise<string[]> {
  const ids: string[] = []
  for (let n = from; n <= to; n++) ids.push(await channel.publish(n))
  return ids
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i)

t.test('publish() resolves with ids that carry the epoch and increase', async t => {
  const { channel } = await serve(t, 10)
  const ids = await publishAll(channel, 1, 3)
  const [epoch] = ids[0].split('-')
  t.same(ids, [`${epoch}-1`, `${epoch}-2`, `${epoch}-3`])
  t.equal(channel.size, 0, 'a channel with no subscribers holds only its history')
})

t.test('resuming with an id in the middle of the history gets exactly the rest, then live', async t => {
  const { url, channel } = await serve(t, 100)
  const ids = await publishAll(channel, 1, 10)
  const client = await open(`${url}?lastEventId=${encodeURIComponent(ids[3])}`)
  await client.waitFor(`cb(10,"${ids[9]}")`)
  const liveId = await channel.publish(11)
  await client.waitFor(liveId)
  channel.close()
  await client.ended
  t.same(replay(client.body(), 'cb'), range(5, 11).map((n, i) => [n, [...ids, liveId][4 + i]]))
})

t.test('resuming with the newest id replays nothing', async t => {
  const { url, channel } = await serve(t, 100)
  const ids = await publishAll(channel, 1, 5)
  const client = await open(`${url}?lastEventId=${encodeURIComponent(ids[4])}`)
  await channel.publish(6)
  channel.close()
  await client.ended
  t.same(messages(client.body(), 'cb'), [6])
})

t.test('an id out of reach gives a reset first, then the live messages', async t => {
  const { url, channel } = await serve(t, 5)
  const ids = await publishAll(channel, 1, 20)
  const other = await (await serve(t, 5)).channel.publish(1)
  const [epoch] = ids[0].split('-')
  const cases: Array<[string, string]> = [
    ['older than the history', ids[2]],
    ['ahead of the channel', `${epoch}-999`],
    ['of another epoch (another channel, or a restarted process)', other],
    ['not an id at all', 'garbage'],
    ['an epoch without a number', `${epoch}-x`]
  ]
  for (const [name, lastEventId] of cases) {
    const client = await open(`${url}?lastEventId=${encodeURIComponent(lastEventId)}`)
    await client.waitFor('cometControl')
    const live = await channel.publish(100)
    await client.waitFor(live)
    client.req.destroy()
    t.same(replayWithControl(client.body(), 'cb'), [
      ['control', 'reset', { lastEventId, id: ids[19] }],
      ['message', 100, live]
    ], name)
    ids[19] = live // the newest id, for the next case's reset
  }
})

t.test('a client without an id gets only live messages, with no reset', async t => {
  const { url, channel } = await serve(t, 5)
  await publishAll(channel, 1, 3)
  const client = await open(url)
  await channel.publish(4)
  channel.close()
  await client.ended
  t.same(replayWithControl(client.body(), 'cb').map(call => call.slice(0, 2)), [['message', 4]])
})

t.test('messages published during a replay arrive once, in order, after it', async t => {
  const { url, channel } = await serve(t, 5000)
  const ids = await publishAll(channel, 1, 3000)
  const client = await open(`${url}?lastEventId=${ids[0].replace(/-\d+$/, '-0')}`)
  // The replay is paced by the socket: publish while it is still going on.
  let last = ''
  for (let n = 3001; n <= 3100; n++) {
    last = await channel.publish(n)
    await turns(1)
  }
  await client.waitFor(last)
  channel.close()
  await client.ended
  t.same(messages(client.body(), 'cb'), range(1, 3100))
})

t.test('a replay larger than the socket takes waits for it to drain, and loses nothing', async t => {
  const { app } = await build(t, { padding: 0, maxBytes: Infinity })
  const channel = app.comet.channel<string>({ history: 2000, maxQueue: 16 })
  let blocked!: Promise<void>
  let raw!: ServerResponse
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    blocked = firstBlockedWrite(reply.raw)
    return reply.comet(channel, 'cb')
  })
  const url = `${await listen(app)}/comet`
  const payload = 'r'.repeat(8192)
  let first = ''
  for (let n = 0; n < 2000; n++) {
    const id = await channel.publish(`${n} ${payload}`)
    if (n === 0) first = id
  }
  const client = await open(`${url}?lastEventId=${first.replace(/-\d+$/, '-0')}`)
  client.res.pause()
  await blocked
  await turns(20)
  t.ok(raw.writableLength <= 4 * 16384 + 8192 * 2, `${raw.writableLength} bytes waiting in the response: the replay waited`)
  client.res.resume()
  await client.waitFor(`1999 ${payload}`)
  channel.close()
  await client.ended
  const received = messages(client.body(), 'cb') as string[]
  t.equal(received.length, 2000, 'every message, although maxQueue is 16: a replay is paced, not queued')
  t.ok(received.every((message, n) => message.startsWith(`${n} `)), 'in order')
})

t.test('a reset tells the client where it stands, so the next resume is exact', async t => {
  const { url, channel } = await serve(t, 3)
  await publishAll(channel, 1, 10)
  const first = await open(`${url}?lastEventId=lost`)
  await first.waitFor('cometControl')
  first.req.destroy()
  const [[, , detail]] = replayWithControl(first.body(), 'cb') as [[string, string, { id: string }]]
  const missed = await channel.publish(11)
  const second = await open(`${url}?lastEventId=${encodeURIComponent(detail.id)}`)
  await second.waitFor(missed)
  channel.close()
  await second.ended
  t.same(replayWithControl(second.body(), 'cb'), [['message', 11, missed]], 'resumed after the reset position: no second reset')
})

t.test('a replay overtaken by the history (published faster than the client takes it) ends as overflow', async t => {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const channel = app.comet.channel<string>({ history: 200 })
  let settled!: Promise<void>
  let raw!: ServerResponse
  app.get('/comet', (request, reply) => {
    raw = reply.raw
    settled = reply.comet(channel, 'cb')
    return settled
  })
  const url = `${await listen(app)}/comet`
  const payload = 'o'.repeat(65536)
  const first = await channel.publish(`0 ${payload}`)
  for (let n = 1; n < 200; n++) await channel.publish(`${n} ${payload}`)
  // 13 MB to replay: more than the kernel's buffers take while the client reads nothing.
  const client = await open(`${url}?lastEventId=${first.replace(/-\d+$/, '-0')}`)
  client.res.pause()
  do await turns(10); while (!raw.writableNeedDrain)
  // While the replay waits for the socket, the channel moves on past everything it still needs.
  for (let n = 200; n < 400; n++) await channel.publish(`${n} ${payload}`)
  client.res.resume()
  await settled
  t.match(logs.find(line => line.msg === 'comet stream ended'), { reason: 'overflow' })
  const received = messages(client.body(), 'cb') as string[]
  t.ok(received.every((message, n) => message.startsWith(`${n} `)), `the ${received.length} messages before it came in order`)
  client.req.destroy()
})
