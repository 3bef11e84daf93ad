// Last-Event-ID names one message. A request that carries the header twice does not name one:
// Node joins the two values into "7, 9", which is no id the application ever gave, so the source
// sees no lastEventId at all (as for a repeated ?lastEventId= query parameter).
import t from 'tap'
import { build, listen, open } from './helpers.js'

t.test('two Last-Event-ID headers reach the source as no id, not as "7, 9"', async t => {
  const { app } = await build(t, { padding: 0 })
  const seen: Array<string | undefined> = []
  app.get('/comet', (request, reply) => reply.comet(({ lastEventId }) => {
    seen.push(lastEventId)
    return [lastEventId ?? null]
  }, 'cb'))
  const url = `${await listen(app)}/comet`

  const single = await open(url, { headers: { 'last-event-id': '7' } })
  await single.ended
  t.same(seen, ['7'], 'one header: its value')

  const twice = await open(url, { headers: { 'last-event-id': ['7', '9'] } })
  await twice.ended
  t.equal(seen.length, 2, 'the source ran for the second request')
  t.equal(seen[1], undefined, 'two headers: no id')

  const same = await open(url, { headers: { 'last-event-id': ['7', '7'] } })
  await same.ended
  t.equal(seen[2], undefined, 'two headers, even equal ones: no id')
})
