import Fastify from 'fastify'
import { Cluster, Redis } from 'ioredis'
import { expect } from 'tstyche'
import fastifyComet, { type CometBroker, type CometHistoryChannel } from './index.js'
import { cometRedis, type CometRedisOptions } from './redis.js'

const app = Fastify()

expect(cometRedis({ url: 'redis://127.0.0.1:6379' })).type.toBe<CometBroker>()
expect(cometRedis({ client: new Redis(), prefix: 'app:', commandTimeout: 500, maxInFlight: 100 })).type.toBe<CometBroker>()
expect(cometRedis({ client: new Cluster([{ host: '127.0.0.1', port: 7000 }]) })).type.toBe<CometBroker>()
expect(cometRedis({ cluster: ['127.0.0.1:7000', 7001, { host: '127.0.0.1', port: 7002 }], prefix: 'app:' })).type.toBe<CometBroker>()
expect(cometRedis({ cluster: '127.0.0.1:7000' })).type.toRaiseError()
expect(cometRedis({ cluster: [true] })).type.toRaiseError()
expect(cometRedis({ url: 6379 })).type.toRaiseError()
expect(cometRedis({ client: {} })).type.toRaiseError()
expect(cometRedis({ url: 'redis://x', timeout: 5 })).type.toRaiseError()
expect<CometRedisOptions>().type.toBeAssignableFrom({ url: 'redis://x' })

expect(app.register(fastifyComet, { broker: cometRedis({ url: 'redis://x' }) })).type.not.toRaiseError()
expect(app.register(fastifyComet, { broker: 'redis://x' })).type.toRaiseError()
expect(app.comet.channel({ name: 'chat', history: 100 })).type.toBe<CometHistoryChannel<unknown>>()
