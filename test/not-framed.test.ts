// A comet document must only talk to the page that framed it: opened as a top-level page (a link
// to the comet URL), `parent` is the document itself and the callback path would run against it.
import t from 'tap'
import { build } from './helpers.js'

t.test('a top-level navigation (Sec-Fetch-Dest: document) is refused with FST_COMET_NOT_FRAMED before anything streams', async t => {
  const { app } = await build(t)
  let pulled = false
  app.get('/comet', (request, reply) => reply.comet((function * () { pulled = true; yield 'secret' })(), 'navigator.sendBeacon'))
  const res = await app.inject({ url: '/comet', headers: { 'sec-fetch-dest': 'document' } })
  t.equal(res.statusCode, 403)
  t.equal(res.json().code, 'FST_COMET_NOT_FRAMED')
  t.notOk(res.body.includes('<script'), 'no script at all')
  t.notOk(pulled, 'the source never ran')
})

t.test('a framed request (Sec-Fetch-Dest: iframe) or one without the header streams', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(['a'], 'cb'))
  for (const headers of [{ 'sec-fetch-dest': 'iframe' }, {}] as Array<Record<string, string>>) {
    const res = await app.inject({ url: '/comet', headers })
    t.equal(res.statusCode, 200, JSON.stringify(headers))
    t.match(res.body, '[0,"a",]')
  }
})
