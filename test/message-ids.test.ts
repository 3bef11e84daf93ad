// Message ids let a reconnecting client resume: the `id` option adds a second argument to each
// script, and a source function learns the last id the client saw (`lastEventId`).
import t from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import { build, listen, open, replay, deferred } from './helpers.js'

t.test('the id option makes each script cb(message, "id")', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(async function * () {
    yield { n: 1 }
    yield { n: 2, skip: true }
    yield { n: 3 }
  }, { callback: 'cb', id: (message: { n: number, skip?: boolean }) => message.skip === true ? undefined : `m${message.n}` }))
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  t.same(replay(stream.body(), 'cb'), [[{ n: 1 }, 'm1'], [{ n: 2, skip: true }], [{ n: 3 }, 'm3']])
  t.match(stream.body(), /\[1,\{"n":1\},"m1",0,\{"n":2,"skip":true\},1,\{"n":3\},"m3",\]\);<\/script>/, 'the id is a string literal after the message')
})

t.test('an id with markup and quotes is escaped and arrives unchanged', async t => {
  const { app } = await build(t, { padding: 0 })
  const ids = ['</script><script>alert(1)</script>', '"); alert(1); ("', "'\\", '<!--', '\u2028\u2029', 'é 😀']
  app.get('/comet', (request, reply) => reply.comet(ids.map((id, i) => ({ i, id })), { callback: 'cb', id: message => message.id }))
  const stream = await open(`${await listen(app)}/comet`)
  await stream.ended
  const body = stream.body()
  t.equal(body.split('</script>').length - 1, 2, 'no id closes a script element early: the helper and one batch')
  t.notOk(body.includes('<!--'), 'no id opens an HTML comment')
  t.same(replay(body, 'cb'), ids.map((id, i) => [{ i, id }, id]), 'every id as it was given')
})

t.test('an id function returning a non-string ends the stream and logs FST_COMET_INVALID_MESSAGE_ID', async t => {
  for (const kind of ['async', 'sync']) {
    t.test(kind, async t => {
      const { app, logs } = await build(t, { padding: 0 })
      const finalized = deferred()
      const id = (message: number): string | undefined => (message === 2 ? 42 : `id${message}`) as string
      app.get('/comet', (request, reply) => kind === 'async'
        ? reply.comet(async function * () {
          try {
            for (let i = 1; ; i++) yield i
          } finally {
            finalized.resolve()
          }
        }, { callback: 'cb', id })
        : reply.comet((function * () {
          try {
            for (let i = 1; ; i++) yield i
          } finally {
            finalized.resolve()
          }
        }()), { callback: 'cb', id }))
      const stream = await open(`${await listen(app)}/comet`)
      await stream.ended
      t.pass('the response ended cleanly')
      t.same(replay(stream.body(), 'cb'), [[1, 'id1']], 'the messages before the bad id, nothing after')
      await finalized.promise
      t.pass("the source's finally block ran")
      const errors = logs.filter(line => line.level >= 50)
      t.equal(errors.length, 1, 'one error line')
      t.match(errors[0], { err: { code: 'FST_COMET_INVALID_MESSAGE_ID' } })
      t.match(logs.find(line => line.msg === 'comet stream ended'), { reason: 'error' })
    })
  }
})

t.test('a source function receives the client\'s lastEventId', async t => {
  const { app } = await build(t, { padding: 0 })
  let seen: Array<string | undefined> = []
  app.get('/comet', (request, reply) => reply.comet(({ signal, lastEventId }) => {
    seen = [lastEventId]
    t.type(signal, AbortSignal)
    return [lastEventId ?? null]
  }, 'cb'))
  const url = `${await listen(app)}/comet`
  async function lastEventId (query: string, headers: IncomingHttpHeaders = {}): Promise<string | undefined> {
    seen = []
    const stream = await open(`${url}${query}`, { headers })
    await stream.ended
    t.equal(seen.length, 1, 'the source function ran once')
    return seen[0]
  }
  const longest = 'x'.repeat(256)
  t.equal(await lastEventId('?lastEventId=abc'), 'abc', 'from the query string')
  t.equal(await lastEventId('', { 'last-event-id': 'abc' }), 'abc', 'from the Last-Event-ID header')
  t.equal(await lastEventId(''), undefined, 'undefined when absent')
  t.equal(await lastEventId(`?lastEventId=${longest}`), longest, '256 characters are accepted')
  t.equal(await lastEventId(`?lastEventId=${longest}x`), undefined, 'undefined when longer than 256 characters')
  t.equal(await lastEventId('', { 'last-event-id': `${longest}x` }), undefined, 'a long header too')
  t.equal(await lastEventId('?lastEventId=a%0Ab'), undefined, 'undefined with a newline')
  t.equal(await lastEventId('?lastEventId=a%00b'), undefined, 'undefined with a NUL')
  t.equal(await lastEventId('?lastEventId=a%7Fb'), undefined, 'undefined with DEL')
  t.equal(await lastEventId('', { 'last-event-id': 'a\tb' }), undefined, 'undefined with a tab in the header')
  t.equal(await lastEventId('?lastEventId=%C3%A9t%C3%A9'), undefined, 'undefined with non-ASCII characters')
  t.equal(await lastEventId('?lastEventId=from-query', { 'last-event-id': 'from-header' }), 'from-query', 'the query wins over the header')
  t.equal(await lastEventId('?lastEventId=a%20b%21~'), 'a b!~', 'printable ASCII, spaces included')
  t.equal(await lastEventId('?lastEventId=a&lastEventId=b'), undefined, 'a repeated query parameter is not an id')
  t.equal(await lastEventId('?lastEventId=a&lastEventId=b', { 'last-event-id': 'abc' }), 'abc', 'the header then counts')
})

t.test('the lastEventId reaches the messages a source function sends', async t => {
  const { app } = await build(t, { padding: 0 })
  app.get('/comet', (request, reply) => reply.comet(async function * ({ lastEventId }) {
    for (let n = Number(lastEventId ?? 0) + 1; n <= 5; n++) yield n
  }, { callback: 'cb', id: n => String(n) }))
  const url = `${await listen(app)}/comet`
  const first = await open(url)
  await first.ended
  const calls = replay(first.body(), 'cb')
  t.same(calls.map(args => args[1]), ['1', '2', '3', '4', '5'])
  const resumed = await open(`${url}?lastEventId=${String(calls[2][1])}`)
  await resumed.ended
  t.same(replay(resumed.body(), 'cb'), [[4, '4'], [5, '5']], 'a reconnecting client resumes after the id it saw')
})
