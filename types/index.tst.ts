import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { Readable } from 'node:stream'
import { expect } from 'tstyche'
import fastifyComet, {
  fastifyComet as named, CometChannel, CometPush, type CometHistoryChannel, type CometSource, type FastifyCometOptions,
  type CometStats, type CometEndReason, type CometStreamOpenMessage, type CometStreamEndMessage, type CometSources
} from './index.js'

const app = Fastify()

expect(named).type.toBe(fastifyComet)
expect(app.register(fastifyComet)).type.not.toRaiseError()
expect(app.register(fastifyComet, { padding: 0 })).type.not.toRaiseError()
expect(app.register(fastifyComet, { padding: '0' })).type.toRaiseError()
expect(app.register(fastifyComet, { maxQueueBytes: 1048576 })).type.not.toRaiseError()
expect(app.register(fastifyComet, { maxQueueBytes: '1 MiB' })).type.toRaiseError()
expect(app.register(fastifyComet, { paddng: 0 })).type.toRaiseError()
expect<FastifyCometOptions>().type.toBeAssignableFrom({ padding: 10 })

app.get('/comet', (request, reply) => {
  expect(reply.comet).type.toBe<FastifyReply['comet']>()
  expect(reply.comet(['a'], 'parent.cb')).type.toBe<Promise<void>>()
  expect(reply.comet(['a'], { callback: 'cb', padding: 0 })).type.not.toRaiseError()
  expect(reply.comet(['a'], { callback: 'cb', maxQueueBytes: 65536 })).type.not.toRaiseError()
  expect(reply.comet(['a'], { padding: 0 })).type.toRaiseError()
  expect(reply.comet(['a'])).type.toRaiseError()
  expect(reply.comet(new Set([1, 2]), 'cb')).type.not.toRaiseError()
  expect(reply.comet(Readable.from(['a']), 'cb')).type.not.toRaiseError()
  expect(reply.comet(new ReadableStream<string>(), 'cb')).type.not.toRaiseError()
  expect(reply.comet((async function * () { yield { n: 1 } }()), 'cb')).type.not.toRaiseError()
  expect(reply.comet(({ signal }) => {
    expect(signal).type.toBe<AbortSignal>()
    return [1]
  }, 'cb')).type.not.toRaiseError()
  expect(reply.comet(42, 'cb')).type.toRaiseError()
  expect(reply.comet('text', 'cb')).type.not.toRaiseError() // strings are iterable; refused at run time
  expect(reply.comet<number>(['a'], 'cb')).type.toRaiseError()
})

expect<CometSource<string>>().type.toBeAssignableFrom(['a'])
expect<CometSource<string>>().type.not.toBeAssignableFrom([1])

interface Tick { time: string }

app.after(() => {
  const channel = app.comet.channel<Tick>({ maxQueue: 10, id: tick => tick.time })
  expect(channel).type.toBe<CometChannel<Tick>>()
  expect(channel.publish({ time: 'now' })).type.toBe<void>()
  expect(channel.publish({ time: 1 })).type.toRaiseError()
  expect(channel.publish('text')).type.toRaiseError()
  expect(channel.size).type.toBe<number>()
  expect(app.comet.channel({ maxQueue: '10' })).type.toRaiseError()

  const chat = app.comet.channel<Tick>({ name: 'chat', history: 100, maxQueue: 64 })
  expect(chat).type.toBe<CometHistoryChannel<Tick>>()
  expect(chat.publish({ time: 'now' })).type.toBe<Promise<string>>()
  expect(chat.publish({ time: 1 })).type.toRaiseError()
  expect(chat.size).type.toBe<number>()
  expect(app.comet.channel<Tick>({ history: 100, id: tick => tick.time })).type.toRaiseError()
  expect(app.comet.channel({ history: '100' })).type.toRaiseError()
  expect(app.comet.channel<Tick>({ name: 'room', history: 100, historyTtl: 60000 })).type.toBe<CometHistoryChannel<Tick>>()
  expect(app.comet.channel({ history: 100, historyTtl: '1m' })).type.toRaiseError()
  expect(app.comet.push({ historyTtl: 1000 })).type.toRaiseError()
  expect(app.comet.channel({ name: 42 })).type.toRaiseError()
  expect(app.comet.push({ history: 10 })).type.toRaiseError()
  expect(app.comet.push({ name: 'x' })).type.toRaiseError()

  const out = app.comet.push<Tick>()
  expect(out.push({ time: 'now' })).type.toBe<boolean>()
  expect(out.push(42)).type.toRaiseError()
  expect(out.signal).type.toBe<AbortSignal>()

  app.get('/channel', (request, reply) => {
    expect(reply.comet(channel, 'cb')).type.toBe<Promise<void>>()
    expect(reply.comet(chat, 'cb')).type.toBe<Promise<void>>()
    expect(reply.comet(() => chat, 'cb')).type.not.toRaiseError()
    expect(reply.comet(out, { callback: 'cb', id: tick => tick.time })).type.not.toRaiseError()
    expect(reply.comet(({ lastEventId }) => {
      expect(lastEventId).type.toBe<string | undefined>()
      return channel
    }, 'cb')).type.not.toRaiseError()
  })

  // Several sources in one stream, by key.
  app.get('/multiplexed', (request, reply) => {
    expect(reply.comet({
      chat,
      ticks: channel,
      out,
      list: ['a'],
      clock: ({ signal }) => {
        expect(signal).type.toBe<AbortSignal>()
        return [1]
      }
    }, 'cb')).type.toBe<Promise<void>>()
    expect(reply.comet({ chat }, { callback: 'cb', padding: 0 })).type.not.toRaiseError()
    expect(reply.comet({ chat }, { padding: 0 })).type.toRaiseError()
    expect(reply.comet({ bad: 42 }, 'cb')).type.toRaiseError()
  })
  expect<CometSources>().type.toBeAssignableFrom({ chat, list: ['a'] })
  expect<CometSources>().type.not.toBeAssignableFrom({ n: 1 })

  // A cursor at render.
  expect(chat.position()).type.toBe<Promise<string>>()
  expect(channel.position()).type.toBe<Promise<string | undefined>>()
})

expect(new CometChannel<number>()).type.toBe<CometChannel<number>>()
expect(new CometPush<string>({ maxQueue: 1 })).type.toBe<CometPush<string>>()

// Operating options: a stream limit and the Retry-After of its refusals.
expect(app.register(fastifyComet, { maxStreams: 100, retryAfter: 5 })).type.not.toRaiseError()
expect(app.register(fastifyComet, { maxStreams: Infinity })).type.not.toRaiseError()
expect(app.register(fastifyComet, { maxStreams: '100' })).type.toRaiseError()
expect(app.register(fastifyComet, { retryAfter: '5' })).type.toRaiseError()
expect(app.register(fastifyComet, { retryafter: 5 })).type.toRaiseError()

app.after(() => {
  const stats = app.comet.stats()
  expect(stats).type.toBe<CometStats>()
  expect(stats.streams.open).type.toBe<number>()
  expect(stats.streams.opened).type.toBe<number>()
  expect(stats.streams.ended).type.toBe<number>()
  expect(stats.streams.refused).type.toBe<number>()
  expect(stats.streams.endReasons).type.toBe<Record<CometEndReason, number>>()
  expect(stats.streams.endReasons['client-gone']).type.toBe<number>()
  expect(stats.messages).type.toBe<number>()
  expect(stats.bytes).type.toBe<number>()
  expect(stats.channels).type.toBe<{ open: number, subscribers: number }>()
  expect(app.comet.stats(true)).type.toRaiseError()
})

expect<CometEndReason>().type.toBe<'done' | 'client-gone' | 'error' | 'shutdown' | 'max-bytes' | 'max-duration' | 'overflow' | 'head' | 'poll'>()
expect<CometEndReason>().type.not.toBeAssignableFrom('closed')

// What the diagnostics channels publish.
expect<CometStreamOpenMessage['request']>().type.toBe<FastifyRequest>()
expect<CometStreamOpenMessage['reply']>().type.toBe<FastifyReply>()
expect<CometStreamEndMessage>().type.toBeAssignableTo<CometStreamOpenMessage>()
expect<CometStreamEndMessage['reason']>().type.toBe<CometEndReason>()
expect<Pick<CometStreamEndMessage, 'messages' | 'bytes' | 'durationMs'>>().type.toBe<{ messages: number, bytes: number, durationMs: number }>()
