// A resume storm (a deploy, or anyone with a script), on one server or on a cluster: hundreds of
// clients come back at once from the oldest message of a long history, while the channel goes on.
// Replay reads wait their turn on their own connection, each timed from when it is sent, so every
// stream replays in full and goes live, and publishes never wait behind them.
import type { Test } from 'tap'
import { open, replayWithControl, type OpenStream } from '../helpers.js'
import { after, type Instance } from './setup.js'

/** The instance's options the storm is meant for: history to spare, a commandTimeout well within one read, far from 500 queued on Redis. */
export const STORM_OPTIONS = { history: 2000, commandTimeout: 500 }

/** 500 clients resuming from the oldest of 1,000 messages of `a.chat` while a publisher sends every 50 ms: every stream replays, none fails, no publish fails. */
export async function resumeStorm (t: Test, a: Instance): Promise<void> {
  const ids: string[] = []
  for (let n = 0; n < 1000; n += 100) {
    ids.push(...await Promise.all(Array.from({ length: 100 }, (_, k) => a.chat.publish(n + k))))
  }
  const failed: Error[] = []
  const live: string[] = []
  const publishes: Array<Promise<unknown>> = []
  let next = 1000
  const publisher = setInterval(() => {
    publishes.push(a.chat.publish(next++).then(id => live.push(id), (err: Error) => failed.push(err)))
  }, 50)
  const clients: OpenStream[] = await Promise.all(Array.from({ length: 500 }, () => open(a.url + after(ids[0]))))
  await Promise.all(clients.map(client => client.waitFor(ids[999])))
  clearInterval(publisher)
  await Promise.all(publishes)
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
}
