// ES module entry of `fastify-comet/client` for `import` under a bundler or Node. The client itself
// is the classic script comet-client.js (CommonJS under a bundler); this file re-exports that one
// module, so `import` and `require` share a single copy.
import FastifyComet from './comet-client.js'

export const { connect } = FastifyComet
export default FastifyComet
