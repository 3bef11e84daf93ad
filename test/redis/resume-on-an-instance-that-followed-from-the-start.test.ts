// An instance that started following a channel before anyone published in it learns the channel's
// epoch from its first message: a client resuming there later, with an id or with `?since=`, gets
// exactly what it missed, as on an instance that came later.
import t from 'tap'
import { open, replayWithControl } from '../helpers.js'
import { useRedis } from './redis-server.js'
import { after, instance } from './setup.js'

const redis = useRedis(t)
if (redis !== undefined) {
  t.beforeEach(() => redis.cli.flushall())

  t.test('resuming by id or by since on an instance that followed the channel before its first message', async t => {
    const [a, b] = [await instance(t, redis), await instance(t, redis)]
    const keeper = await open(b.url)
    // Answered once b has read where the channel stands: nowhere yet.
    const probe = await open(b.url + after('0123456789ab-1'))
    await probe.waitFor('"reset"')
    probe.req.destroy()
    const ids = [await a.chat.publish('first'), await a.chat.publish('second')]
    await keeper.waitFor(ids[1])
    const byId = await open(`${b.url}?transport=poll&lastEventId=${encodeURIComponent(ids[0])}`)
    const bySince = await open(`${b.url}?transport=poll&since=3600000`)
    await Promise.all([byId.ended, bySince.ended])
    keeper.req.destroy()
    t.same(replayWithControl(byId.body(), 'cb'), [['message', 'second', ids[1]], ['control', 'reconnect', { delay: 0 }]], 'by id: what followed it')
    t.same(replayWithControl(bySince.body(), 'cb'), [['message', 'first', ids[0]], ['message', 'second', ids[1]], ['control', 'reconnect', { delay: 0 }]], 'by since: the window')
  })
}
