// The browser client's declarations (client/comet-client.d.ts), tested like the plugin's.
import { expect } from 'tstyche'
import FastifyComet = require('../client/comet-client.js')

interface Tick { n: number }

const stream = FastifyComet.connect<Tick>('/events', {
  callback: 'cometMessage',
  onMessage (message, id, key) {
    expect(message).type.toBe<Tick>()
    expect(id).type.toBe<string | undefined>()
    expect(key).type.toBe<string | undefined>()
  },
  onOpen () {},
  onClose (info) {
    expect(info.reason).type.toBe<'rotated' | 'ended' | 'error' | 'timeout' | 'lost' | 'closed' | 'buffered' | 'upgrade'>()
    expect(info.transport).type.toBe<'stream' | 'poll'>()
    expect(info.delay).type.toBe<number | undefined>()
    expect(info.attempt).type.toBe<number>()
  },
  onReset (info) {
    expect(info).type.toBe<FastifyComet.ResetInfo>()
    expect(info.key).type.toBe<string | undefined>()
    expect(info.lastEventId).type.toBe<string | undefined>()
  },
  minDelay: 500,
  maxDelay: 30000,
  connectTimeout: 15000,
  lastEventId: 'abc-1',
  shared: true,
  transport: 'auto',
  probeTimeout: 3000
})

expect(stream).type.toBe<FastifyComet.Stream>()
expect(stream.close()).type.toBe<void>()
expect(stream.lastEventId).type.toBe<string | Record<string, string> | undefined>()
expect(stream.lastEventId).type.toBe<FastifyComet.Cursor | undefined>()

// Several sources in one stream: a cursor of one id per key; a message handler with two
// parameters still fits.
FastifyComet.connect('/live', { onMessage (message, id) {}, lastEventId: { chat: 'c-1', alerts: 'a-2' }, shared: false })
FastifyComet.connect('/live', { onMessage () {}, lastEventId: {} })
expect(stream.closed).type.toBe<boolean>()
expect(stream.transport).type.toBe<FastifyComet.Transport>()
FastifyComet.connect('/events', { onMessage () {}, transport: 'poll' })
FastifyComet.connect('/events', { onMessage () {}, transport: 'stream' })
expect(FastifyComet.connect('/events', { onMessage () {}, transport: 'websocket' })).type.toRaiseError()
expect(FastifyComet.connect('/events', { onMessage () {}, probeTimeout: '3s' })).type.toRaiseError()
expect(FastifyComet.connect('/events', {})).type.toRaiseError() // onMessage is required
expect(FastifyComet.connect('/events', { onMessage () {}, minDelay: '500' })).type.toRaiseError()
expect(FastifyComet.connect('/events', { onMessage () {}, onReset: 'reload' })).type.toRaiseError()
expect(FastifyComet.connect('/events', { onMessage () {}, connectTimeout: '15s' })).type.toRaiseError()
expect(FastifyComet.connect(42, { onMessage () {} })).type.toRaiseError()
expect(FastifyComet.connect('/events', { onMessage () {}, lastEventId: 7 })).type.toRaiseError()
expect(FastifyComet.connect('/events', { onMessage () {}, lastEventId: { chat: 7 } })).type.toRaiseError()
expect(FastifyComet.connect('/events', { onMessage () {}, shared: 'yes' })).type.toRaiseError()
