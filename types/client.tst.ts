// The browser client's declarations (client/comet-client.d.ts), tested like the plugin's.
import { expect } from 'tstyche'
import FastifyComet = require('../client/comet-client.js')

interface Tick { n: number }

const stream = FastifyComet.connect<Tick>('/events', {
  callback: 'cometMessage',
  onMessage (message, id) {
    expect(message).type.toBe<Tick>()
    expect(id).type.toBe<string | undefined>()
  },
  onOpen () {},
  onClose (info) {
    expect(info.reason).type.toBe<'rotated' | 'ended' | 'error' | 'timeout' | 'lost' | 'closed'>()
    expect(info.delay).type.toBe<number | undefined>()
    expect(info.attempt).type.toBe<number>()
  },
  onReset (info) {
    expect(info.lastEventId).type.toBe<string | undefined>()
  },
  minDelay: 500,
  maxDelay: 30000,
  connectTimeout: 15000,
  lastEventId: 'abc-1'
})

expect(stream).type.toBe<FastifyComet.Stream>()
expect(stream.close()).type.toBe<void>()
expect(stream.lastEventId).type.toBe<string | undefined>()
expect(stream.closed).type.toBe<boolean>()
expect(FastifyComet.connect('/events', {})).type.toRaiseError() // onMessage is required
expect(FastifyComet.connect('/events', { onMessage () {}, minDelay: '500' })).type.toRaiseError()
expect(FastifyComet.connect('/events', { onMessage () {}, onReset: 'reload' })).type.toRaiseError()
expect(FastifyComet.connect('/events', { onMessage () {}, connectTimeout: '15s' })).type.toRaiseError()
expect(FastifyComet.connect(42, { onMessage () {} })).type.toRaiseError()
