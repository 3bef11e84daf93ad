// historyTtl: a channel keeps a message for at most that many milliseconds. A client that missed a
// message that has aged out gets a reset, never a silent gap; one that missed only what is still
// held gets exactly that.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { CometChannel } from '../lib/channel.js'
import { kCometFeed, type CometSubscriber } from '../lib/feed.js'
import { build } from './helpers.js'

// Long enough that nothing ages out between two lines of the test, however busy the machine.
const TTL = 250

/** What a subscriber resuming from `lastEventId` is given at once: entries and control messages. */
function resumeFrom (channel: CometChannel<string>, lastEventId: string | undefined): unknown[][] {
  const got: unknown[][] = []
  const subscriber: CometSubscriber = {
    ready: true,
    whenReady: async () => {},
    deliver: entry => { got.push(['message', entry]) },
    control: (type, detail) => { got.push(['control', type, detail]) },
    end: () => {},
    fail: err => { throw err }
  }
  const feed = channel[kCometFeed]({ lastEventId })
  feed.start(subscriber)
  feed.stop()
  return got
}

t.test('messages older than historyTtl leave the history: a resume that needs one gets a reset', async t => {
  const channel = new CometChannel<string>({ history: 10, historyTtl: TTL })
  const first = await channel.publish('first') as string
  const second = await channel.publish('second') as string
  t.match(resumeFrom(channel, first), [['message', /"second"/]], 'within the ttl, a resume replays')
  await sleep(TTL * 2) // the age is the behaviour under test
  const third = await channel.publish('third') as string
  t.same(resumeFrom(channel, first), [['control', 'reset', { lastEventId: first, id: third }]], 'it needed "second", which aged out: a reset')
  t.match(resumeFrom(channel, second), [['message', /"third"/]], 'a client that has "second" needs only "third": replayed')
  t.same(resumeFrom(channel, third), [], 'a client that has everything goes live')
  await sleep(TTL * 2)
  t.same(resumeFrom(channel, second), [['control', 'reset', { lastEventId: second, id: third }]], 'once "third" aged out too, a reset')
  t.same(resumeFrom(channel, third), [], 'but nothing was missed from the newest id')
})

t.test('without historyTtl, messages are kept whatever their age (the history size still bounds them)', async t => {
  const channel = new CometChannel<string>({ history: 10 })
  const first = await channel.publish('first') as string
  await channel.publish('second')
  await sleep(TTL * 2)
  t.match(resumeFrom(channel, first), [['message', /"second"/]])
})

t.test('historyTtl is validated, and needs a history', async t => {
  const { app } = await build(t)
  for (const historyTtl of [-1, 1.5, '10', 2147483648, Infinity]) {
    t.throws(() => app.comet.channel({ history: 10, historyTtl } as never), { code: 'FST_COMET_INVALID_OPTION', message: /historyTtl/ }, String(historyTtl))
  }
  t.throws(() => app.comet.channel({ historyTtl: 1000 }), { code: 'FST_COMET_INVALID_OPTION', message: /history/ }, 'without a history')
  t.doesNotThrow(() => app.comet.channel({ history: 10, historyTtl: 0 }), '0: no age limit')
  app.comet.channel({ name: 'room', history: 10, historyTtl: 1000 })
  t.throws(() => app.comet.channel({ name: 'room', history: 10, historyTtl: 2000 }), { code: 'FST_COMET_INVALID_OPTION', message: /historyTtl/ }, 'another ttl for a name in use')
})
