// A hop that buffers each response whole, as an antivirus scanner or an inspecting proxy does: it
// forwards each request to the app and passes the response's head and body on only once the
// upstream response has ended, with a Content-Length. A forever document never gets through; a
// poll gets through whole. A client that leaves aborts its upstream request, as a proxy would.
import http from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

// Headers that describe one connection, not the response (RFC 9110, 7.6.1): never forwarded.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade'])

export interface BufferingProxy {
  /** The proxy's origin: the app's routes, through the proxy. */
  url: string
  /** The path and query of every request forwarded, in order. */
  requests: string[]
  /** Resolves once an upstream response has brought `text`, which the proxy holds until that response ends. */
  holding: (text: string) => Promise<void>
}

/** Starts a whole-response buffering proxy in front of `upstream` (an origin); it closes with `t`. */
export async function startBufferingProxy (t: Test, upstream: string): Promise<BufferingProxy> {
  const requests: string[] = []
  const waiters = new Set<(chunk: string) => void>()
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '/')
    const headers: http.OutgoingHttpHeaders = { ...req.headers, host: new URL(upstream).host }
    for (const name of HOP_BY_HOP) delete headers[name]
    const forwarded = http.request(new URL(req.url ?? '/', upstream), { method: req.method, headers })
    req.pipe(forwarded)
    res.on('close', () => { if (!res.writableFinished) forwarded.destroy() })
    forwarded.on('error', () => res.destroy())
    forwarded.on('response', (upstreamRes: http.IncomingMessage) => {
      const chunks: Buffer[] = []
      upstreamRes.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        for (const waiter of waiters) waiter(chunk.toString('latin1'))
      })
      upstreamRes.on('error', () => res.destroy())
      upstreamRes.on('end', () => {
        const body = Buffer.concat(chunks)
        const head: http.OutgoingHttpHeaders = {}
        for (const [name, value] of Object.entries(upstreamRes.headers)) {
          if (!HOP_BY_HOP.has(name) && value !== undefined) head[name] = value
        }
        head['content-length'] = body.length
        res.writeHead(upstreamRes.statusCode ?? 502, head)
        res.end(body)
      })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>(resolve => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const holding = (text: string): Promise<void> => new Promise(resolve => {
    let tail = '' // a text may straddle two chunks (of one response, as the tests use it)
    const waiter = (chunk: string): void => {
      const window = tail + chunk
      if (!window.includes(text)) {
        tail = window.slice(-text.length)
        return
      }
      waiters.delete(waiter)
      resolve()
    }
    waiters.add(waiter)
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, holding }
}
