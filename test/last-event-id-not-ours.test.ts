// A position the client names that is none of ours (any length, any character, in the query or the
// header, a repeated one, a multiplexed cursor that does not parse) gives a channel with history a
// reset, never a silent start from live; an empty one counts as none. Source functions are given
// only ids we could have made (printable ASCII, at most 256 characters).
import t from 'tap'
import http from 'node:http'
import { once } from 'node:events'
import { build, listen, open, replayWithControl } from './helpers.js'

t.test('ids that are none of ours give a reset, from the query or the header; an empty one is none', async t => {
  const { app } = await build(t, { padding: 0 })
  const room = app.comet.channel<string>({ history: 10 })
  const last = await room.publish('one')
  const seen: unknown[] = []
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  app.get('/fn', (request, reply) => reply.comet(({ lastEventId }) => { seen.push(lastEventId); return [] }, 'cb'))
  const origin = await listen(app)

  const notOurs: Array<[string, string, http.OutgoingHttpHeaders?]> = [
    ['non-ASCII', '?lastEventId=' + encodeURIComponent(`${last}é`)],
    ['257 characters', '?lastEventId=' + 'a'.repeat(257)],
    ['10,000 characters', '?lastEventId=' + 'a'.repeat(10000)],
    ['a control character', '?lastEventId=' + encodeURIComponent(`${last}\u0001`)],
    ['a repeated query parameter', `?lastEventId=${last}&lastEventId=${last}`],
    ['a latin-1 header', '', { 'last-event-id': Buffer.from(`${last}\u00e9`, 'latin1').toString('latin1') }],
    ['a repeated header', '', { 'last-event-id': [last, last] }]
  ]
  for (const [name, query, headers] of notOurs) {
    const client = await open(`${origin}/comet${query}`, { headers })
    await client.waitFor('"reset"')
    client.req.destroy()
    const fn = await open(`${origin}/fn${query}`, { headers })
    await fn.ended
    t.same(seen.pop(), undefined, `${name}: a source function is given no id`)
    t.match(replayWithControl(client.body(), 'cb'), [['control', 'reset', { id: last }]], `${name}: a reset`)
  }

  for (const [name, query, headers] of [['an empty query parameter', '?lastEventId='], ['an empty header', '', { 'last-event-id': '' }]] as const) {
    const client = await open(`${origin}/comet${query}`, { headers })
    const id = await room.publish(name)
    await client.waitFor(id)
    client.req.destroy()
    t.same(replayWithControl(client.body(), 'cb'), [['message', name, id]], `${name}: live, no reset`)
  }
})

t.test('a latin-1 header reaches Node as bytes over 0x7f: not an id', async t => {
  const { app } = await build(t, { padding: 0 })
  const room = app.comet.channel<string>({ history: 10 })
  await room.publish('one')
  app.get('/comet', (request, reply) => reply.comet(room, 'cb'))
  const { port } = new URL(await listen(app))
  // Written by hand: Node's client refuses such a header value.
  const socket = (await import('node:net')).connect(Number(port), '127.0.0.1')
  await once(socket, 'connect')
  socket.write(Buffer.concat([Buffer.from('GET /comet HTTP/1.1\r\nHost: x\r\nLast-Event-ID: id'), Buffer.from([0xe9]), Buffer.from('\r\n\r\n')]))
  let text = ''
  for await (const chunk of socket) {
    text += chunk.toString('latin1')
    if (text.includes('"reset"')) break
  }
  socket.destroy()
  t.match(text, /"reset",\{"id":"[0-9a-f]{12}-1"\}/)
})
