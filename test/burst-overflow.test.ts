// maxQueue bounds what a subscriber that is behind may hold; it is not a limit on how much can be
// published in one tick. A burst ends no subscriber that keeps up, however large, while one whose
// client stopped reading (its socket already full) is still ended as overflowed.
import t from 'tap'
import type { ServerResponse } from 'node:http'
import { once } from 'node:events'
import { build, listen, open, messages, turns, fastAndSlowClients } from './helpers.js'

const BURST = 2000 // about twice the default maxQueue (1024)

t.test(`a subscriber that keeps up receives a burst of ${BURST} messages published in one tick`, async t => {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const channel = app.comet.channel<number>()
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  const client = await open(`${await listen(app)}/comet`)
  for (let i = 0; i < BURST; i++) channel.publish(i)
  channel.publish(-1)
  channel.close()
  await client.ended
  const received = messages(client.body(), 'cb')
  t.equal(received.length, BURST + 1, 'every message arrived')
  t.same(received.slice(-2), [BURST - 1, -1], 'up to the last, in order')
  t.match(logs.filter(line => line.msg === 'comet stream ended'), [{ reason: 'done' }], 'ended by the channel, not as overflowed')
  t.notOk(logs.some(line => line.level >= 40), 'nothing logged as a warning')
})

t.test(`a push source can push a burst of ${BURST} messages in one tick to a client that keeps up`, async t => {
  const { app, logs } = await build(t, { padding: 0, maxBytes: Infinity })
  const accepted: boolean[] = []
  app.get('/comet', (request, reply) => {
    const out = app.comet.push<number>()
    const streaming = reply.comet(out, 'cb')
    for (let i = 0; i < BURST; i++) accepted.push(out.push(i))
    out.end()
    return streaming
  })
  const client = await open(`${await listen(app)}/comet`)
  await client.ended
  t.equal(accepted.filter(Boolean).length, BURST, 'push() accepted every message')
  t.equal(messages(client.body(), 'cb').length, BURST, 'every message arrived')
  t.match(logs.filter(line => line.msg === 'comet stream ended'), [{ reason: 'done' }], 'ended by the source, not as overflowed')
})

t.test('the same burst still ends a subscriber whose client has stopped reading', async t => {
  const { logs, channel, raws, ids, done, fast, slow } = await fastAndSlowClients<number | string>(t)
  // Fill the slow client's socket before the burst: it is behind, whatever comes next.
  const big = 'x'.repeat(65536)
  const slowRaw = raws.get('slow') as ServerResponse
  let filling = 0
  while (!slowRaw.writableNeedDrain) {
    channel.publish(`${filling++}:${big}`)
    await fast.waitFor(`${filling - 1}:`)
    await turns(1)
  }
  t.ok(filling < 1024, `the slow socket was full after ${filling} big messages`)

  for (let i = 0; i < BURST; i++) channel.publish(i)
  channel.publish(-1)
  await done.get('slow')
  const endOf = (who: string): unknown[] => logs.filter(line => line.msg === 'comet stream ended' && line.reqId === ids.get(who))
  t.match(endOf('slow'), [{ reason: 'overflow' }], 'the slow subscriber was ended as overflowed')

  await fast.waitFor('0,-1,')
  t.same(endOf('fast'), [], 'the fast one is still open')
  t.equal(channel.size, 1, 'only the fast subscriber is left')
  channel.close()
  await fast.ended
  const received = messages(fast.body(), 'cb')
  t.equal(received.length, filling + BURST + 1, 'the fast subscriber got everything')
  slow.res.resume()
  await once(slow.res, 'close')
})
