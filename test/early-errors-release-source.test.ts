// reply.comet() refuses bad arguments before anything is written, and whatever source it was given
// is released then: a push source's signal aborts, so the README's cleanup (stop producing on
// abort) runs even for a stream that never started. The callback usually comes from the query
// string, so these refusals are the client's to trigger, once per request.
import t from 'tap'
import type { FastifyReply } from 'fastify'
import { build } from './helpers.js'
import type { CometPush } from '../types/index.js'

t.test('a push source is released when reply.comet() refuses its arguments', async t => {
  const { app } = await build(t, { padding: 0 })
  const sources: CometPush[] = []
  const refusals: Record<string, (push: CometPush, reply: FastifyReply) => unknown> = {
    'an invalid callback': (push, reply) => reply.comet(push, 'bad name'),
    'a refused callback': (push, reply) => reply.comet(push, 'eval'),
    'an unknown option': (push, reply) => reply.comet(push, { callback: 'cb', bogus: 1 } as unknown as { callback: string }),
    'an invalid option value': (push, reply) => reply.comet(push, { callback: 'cb', padding: -1 })
  }
  app.get('/comet', (request, reply) => {
    const push = app.comet.push<string>()
    sources.push(push)
    push.push('queued before the refusal')
    return refusals[(request.query as { case: string }).case](push, reply)
  })
  const expected: Record<string, { status: number, code: string }> = {
    'an invalid callback': { status: 400, code: 'FST_COMET_INVALID_CALLBACK' },
    'a refused callback': { status: 400, code: 'FST_COMET_INVALID_CALLBACK' },
    'an unknown option': { status: 500, code: 'FST_COMET_INVALID_OPTION' },
    'an invalid option value': { status: 500, code: 'FST_COMET_INVALID_OPTION' }
  }
  for (const [name, { status, code }] of Object.entries(expected)) {
    const res = await app.inject({ url: '/comet', query: { case: name } })
    t.equal(res.statusCode, status, `${name}: ${status}`)
    t.equal(res.json().code, code, `${name}: ${code}`)
    const push = sources[sources.length - 1]
    t.ok(push.signal.aborted, `${name}: the push source's signal aborted`)
    t.equal(push.push('after'), false, `${name}: pushing more is pointless`)
  }
})

t.test('a push source is released when the reply was already sent', async t => {
  const { app } = await build(t, { padding: 0 })
  let push!: CometPush<string>
  let caught: { code?: string } | undefined
  app.get('/comet', (request, reply) => {
    push = app.comet.push<string>()
    reply.send('already answered')
    try {
      reply.comet(push, 'cb').catch(() => {})
    } catch (err) {
      caught = err as { code?: string }
    }
    return reply
  })
  const res = await app.inject('/comet')
  t.equal(res.body, 'already answered', 'the first answer stands')
  t.equal(caught?.code, 'FST_COMET_REPLY_SENT', 'reply.comet() threw FST_COMET_REPLY_SENT')
  t.ok(push.signal.aborted, "the push source's signal aborted")
})

t.test('a push source returned by a source function is released when the arguments are refused', async t => {
  const { app } = await build(t, { padding: 0 })
  let push: CometPush<string> | undefined
  app.get('/comet', (request, reply) => reply.comet(() => {
    push = app.comet.push<string>()
    return push
  }, { callback: 'cb', id: () => 'x' }))
  const res = await app.inject('/comet')
  t.equal(res.statusCode, 500, 'refused with a 500')
  t.equal(res.json().code, 'FST_COMET_INVALID_OPTION', 'id is set on the push source, not the reply')
  t.ok(push === undefined || push.signal.aborted, 'the push source was never made, or its signal aborted')
})
