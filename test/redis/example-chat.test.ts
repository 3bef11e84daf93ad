// The example (example/server.js) started twice with REDIS_URL, as `REDIS_URL=... npm run example`
// does: one chat for both, each line in one order with one id, and a page that reconnects to the
// other instance resumes there. (Without REDIS_URL: test/example.test.ts.)
import t from 'tap'
import { resolve } from 'node:path'
import { startServer, type ChildServer } from '../child-server.js'
import { open, replay } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { after, keysOf } from './setup.js'

const EXAMPLE = resolve(__dirname, '../../example/server.js')

const redis = useRedis(t)
if (redis !== undefined) {
  t.test('two examples on one REDIS_URL share their chat: a line posted to either reaches both, and history resumes on either', async t => {
    const [a, b] = await Promise.all([1, 2].map(() => startServer(t, EXAMPLE, { PORT: '0', HOST: '127.0.0.1', REDIS_URL: redis.url })))
    const say = async (instance: ChildServer, text: string): Promise<void> => {
      const res = await fetch(`${instance.origin}/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text }) })
      t.equal(res.status, 204, `"${text}" posted`)
    }
    await say(a, 'first')
    // The id of "first", from the channel's keys in Redis (the example's POST answers 204 without it).
    const first = `${await redis.cli.hget(keysOf('chat').meta, 'epoch')}-1`
    await say(b, 'second')
    // Pages that had "first": both instances replay "second" from Redis, then go live.
    const pages = await Promise.all([a, b].map(instance => open(`${instance.origin}/chat${after(first)}`)))
    await Promise.all(pages.map(page => page.waitFor('"second"')))
    await say(a, 'third')
    await Promise.all(pages.map(page => page.waitFor('"third"')))
    for (const [n, page] of pages.entries()) {
      page.req.destroy()
      const lines = replay(page.body(), 'parent.chatMessage') as Array<[{ text: string }, string]>
      t.same(lines.map(([{ text }, id]) => [text, id]), [['second', first.replace(/-1$/, '-2')], ['third', first.replace(/-1$/, '-3')]], `instance ${n}`)
    }
  })
}
