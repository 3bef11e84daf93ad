// Channels appear on use and go when unused: the plugin holds a named channel only while it has
// subscribers or messages a client may still resume from. Then it lets go of it, so per-room or
// per-user names do not pile up; the next use of the name starts a new channel (a new epoch: an
// old id gets a reset, never a message it does not name). A channel the application keeps stays
// the channel of its name.
import t from 'tap'
import v8 from 'node:v8'
import vm from 'node:vm'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance } from 'fastify'
import { kCometFeed, type CometSubscriber } from '../lib/feed.js'
import type { CometFeedSource } from '../lib/feed.js'
import { build, listen, logged, open, replayWithControl, turns } from './helpers.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void

/** Runs the garbage collector until what it freed has been finalized. */
async function collect (): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await turns(1) // a WeakRef's target is kept until the end of the job that read it
    gc()
  }
}

const TTL = 40
const ROOM = { history: 10, historyTtl: TTL }

const idle: CometSubscriber = { ready: true, whenReady: async () => {}, deliver () {}, control () {}, end () {}, fail (err) { throw err } }

/** Subscribes to the named channel and leaves, publishing `message` meanwhile; keeps no reference. */
async function useOnce (app: FastifyInstance, name: string, message?: string, options: object = ROOM): Promise<{ ref: WeakRef<object>, id: string | undefined }> {
  const channel = app.comet.channel<string>({ name, ...options })
  const feed = (channel as unknown as CometFeedSource)[kCometFeed]({ lastEventId: undefined })
  feed.start(idle)
  const id = message === undefined ? undefined : await channel.publish(message) ?? undefined
  feed.stop()
  return { ref: new WeakRef(channel), id }
}

t.test('a named channel with no subscribers and nothing to keep is let go; one with messages to keep is held until they age out', async t => {
  const { app, logs } = await build(t, { padding: 0 })
  app.get('/room/:name', (request, reply) => {
    const { name } = request.params as { name: string }
    return reply.comet(app.comet.channel({ name, ...ROOM }), 'cb')
  })
  const url = await listen(app)

  // Over HTTP: a visitor opens a room and leaves.
  const client = await open(`${url}/room/visited`)
  const ref = new WeakRef(app.comet.channel({ name: 'visited', ...ROOM }))
  client.req.destroy()
  await logged(logs, line => line.msg === 'comet stream ended')
  await collect()
  t.equal(ref.deref(), undefined, 'a room visited once, without a message, is let go')

  // An hour: still within it whatever the machine's pace.
  const recent = await useOnce(app, 'recent', 'hello', { history: 10, historyTtl: 3600000 })
  const withMessage = await useOnce(app, 'talked', 'hello')
  await collect()
  t.not(recent.ref.deref(), undefined, 'a room with a message still within its ttl is held')
  await sleep(TTL * 2) // the age is the behaviour under test
  await collect()
  t.equal(withMessage.ref.deref(), undefined, 'and let go once the message aged out')

  const back = await open(`${url}/room/talked?lastEventId=${encodeURIComponent(withMessage.id as string)}`)
  await back.waitFor('"reset"')
  back.req.destroy()
  const [reset] = replayWithControl(back.body(), 'cb')
  t.match(reset, ['control', 'reset', { lastEventId: withMessage.id, id: /^[0-9a-f]{12}-0$/ }], 'the name started afresh: the old id gets a reset')
  t.not((reset[2] as { id: string }).id.split('-')[0], (withMessage.id as string).split('-')[0], 'under a new epoch')
})

t.test('without historyTtl a named channel with messages is held for good, one without is let go; a channel the application keeps stays its name', async t => {
  const { app } = await build(t)
  const forever = await useOnce(app, 'forever', 'kept', { history: 10 })
  const silent = await useOnce(app, 'silent', undefined, { history: 10 })
  const kept = app.comet.channel({ name: 'kept' })
  const keptFeed = (kept as unknown as CometFeedSource)[kCometFeed]({ lastEventId: undefined })
  keptFeed.start(idle)
  keptFeed.stop()
  await collect()
  t.not(forever.ref.deref(), undefined, 'messages without an age limit are kept: the channel is held')
  t.equal(silent.ref.deref(), undefined, 'the same channel without a message has nothing to keep: let go')
  t.equal(app.comet.channel({ name: 'kept' }), kept, 'the application holds it: the name gives it back')
})

const NAMES = 100_000

t.test(`${NAMES} room names used once each leave the heap within 10 % of where it started`, { timeout: 120000 }, async t => {
  const { app } = await build(t)
  const useMany = async (prefix: string, count: number): Promise<Array<WeakRef<object>>> => {
    const sample: Array<WeakRef<object>> = []
    for (let i = 0; i < count; i++) {
      // One in ten gets a message: held until it ages out.
      const { ref } = await useOnce(app, `${prefix}-${i}`, i % 10 === 0 ? `message ${i}` : undefined)
      if (i % 1000 === 0) sample.push(ref)
    }
    return sample
  }
  await useMany('warm-up', 2000) // compiled code and grown pools are not what is measured
  await sleep(TTL * 2)
  await collect()
  const before = process.memoryUsage().heapUsed

  const sample = await useMany('room', NAMES)
  const during = process.memoryUsage().heapUsed
  await sleep(TTL * 2)
  await collect()
  const after = process.memoryUsage().heapUsed
  const mb = (bytes: number): string => (bytes / 1048576).toFixed(1)
  t.comment(`heap: ${mb(before)} MB before, ${mb(during)} MB right after ${NAMES} names, ${mb(after)} MB once they aged out`)
  t.equal(sample.filter(ref => ref.deref() !== undefined).length, 0, 'every sampled channel was collected')
  t.ok(after <= before * 1.1, `the heap is within 10 % of where it started (${mb(before)} -> ${mb(after)} MB)`)
})
