// A resume storm (a deploy, or anyone with a script): hundreds of clients come back at once from
// the oldest message of a long history, while the channel goes on. Replay reads wait their turn on
// their own connection, each timed from when it is sent, so every stream replays in full and goes
// live, and publishes never wait behind them.
import t from 'tap'
import { open, replayWithControl, type OpenStream } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { after, instance } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.test('500 clients resuming from the oldest of 1,000 messages while a publisher sends every 50 ms: every stream replays, none fails, no publish fails', async t => {
    // History to spare: the oldest stays in the log while the channel goes on. A commandTimeout well within what one read takes, far from what 500 reads queued on Redis take.
    const a = await instance(t, redis, { history: 2000, commandTimeout: 500 })
    const ids: string[] = []
    for (let n = 0; n < 1000; n += 100) {
      ids.push(...await Promise.all(Array.from({ length: 100 }, (_, k) => a.chat.publish(n + k))))
    }
    const failed: Error[] = []
    const live: string[] = []
    let next = 1000
    const publisher = setInterval(() => {
      a.chat.publish(next++).then(id => live.push(id), (err: Error) => failed.push(err))
    }, 50)
    const clients: OpenStream[] = await Promise.all(Array.from({ length: 500 }, () => open(a.url + after(ids[0]))))
    await Promise.all(clients.map(client => client.waitFor(ids[999])))
    clearInterval(publisher)
    await new Promise(resolve => setTimeout(resolve, 100)) // the last publish's answer
    t.same(failed, [], 'no publish failed')
    t.ok(live.length > 0, 'the channel went on during the storm')
    const last = live.at(-1) as string
    await Promise.all(clients.map(client => client.waitFor(last)))
    const expected = [...ids.slice(1), ...live]
    let complete = 0
    for (const client of clients) {
      client.req.destroy()
      const entries = replayWithControl(client.body(), 'cb')
      if (entries.length === expected.length && entries.every(([kind, , id], n) => kind === 'message' && id === expected[n])) complete++
    }
    t.equal(complete, 500, 'every stream got every message after its id, once, in order, and no control message')
    t.same(a.logs.filter(line => line.level >= 40).map(line => line.msg), [], 'nothing went wrong')
  })
}
