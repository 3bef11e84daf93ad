// Types of client/comet-client.mjs: the CommonJS client (comet-client.d.ts) as an ES module,
// with `connect` as a real named export and the whole API as the default export.
import FastifyComet from './comet-client.js'

export type CloseInfo = FastifyComet.CloseInfo
export type Cursor = FastifyComet.Cursor
export type ResetInfo = FastifyComet.ResetInfo
export type ConnectOptions<T = unknown> = FastifyComet.ConnectOptions<T>
export type Stream = FastifyComet.Stream
export declare const connect: typeof FastifyComet.connect
export default FastifyComet
