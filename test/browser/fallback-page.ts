// The server and page of the polling fallback tests: a history channel behind GET /events, and a
// page that connects to it with the shipped client and its defaults, recording each message with
// the page's clock (Date.now(), the machine's clock, as the server's is) and each onClose with its
// time. The server counts the polls it is asked for.
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { build, deferred, listen } from '../helpers.js'

/** A message of the tests: its number and when the server published it (Date.now()). */
export interface Stamped { n: number, publishedAt: number }

export interface FallbackState {
  received: Array<{ message: Stamped, id: string | undefined, at: number }>
  closes: Array<{ reason: string, transport?: string, at: number }>
  stream: { transport: 'stream' | 'poll' }
}

declare global {
  interface Window {
    fallback: FallbackState
  }
}

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fallback</title><link rel="icon" href="data:,">
<script src="/comet/client.js"></script><script src="/app.js"></script></head><body></body></html>
`

const APP = `'use strict'
const state = window.fallback = { received: [], closes: [] }
state.stream = FastifyComet.connect('/events', {
  onMessage (message, id) { state.received.push({ message, id, at: Date.now() }) },
  onClose (info) { state.closes.push(Object.assign({ at: Date.now() }, info)) }
})
`

export interface FallbackServer {
  app: FastifyInstance
  origin: string
  /** Publishes message n, stamped with the time of publishing. */
  publish: (n: number) => Promise<string>
  /** Requests for /events with ?transport=poll so far. */
  polls: () => number
  /** Resolves once a first request for /events is subscribed to the channel. */
  subscribed: Promise<void>
}

/** The app on a free port, with the plugin's defaults; it closes with `t`. */
export async function fallbackServer (t: Test): Promise<FallbackServer> {
  const { app } = await build(t, { clientPath: '/comet/client.js' })
  let polls = 0
  app.addHook('onRequest', async request => {
    const url = new URL(request.url, 'http://localhost')
    if (url.pathname === '/events' && url.searchParams.get('transport') === 'poll') polls++
  })
  app.get('/page', (request, reply) => reply.type('text/html; charset=utf-8').send(HTML))
  app.get('/app.js', (request, reply) => reply.type('text/javascript; charset=utf-8').send(APP))
  const channel = app.comet.channel<Stamped>({ name: 'events', history: 1000 })
  const subscribed = deferred()
  app.get('/events', (request, reply) => {
    const done = reply.comet(channel, { callback: 'parent.cometMessage' })
    subscribed.resolve() // reply.comet() subscribes before it returns
    return done
  })
  return {
    app,
    origin: await listen(app),
    publish: n => channel.publish({ n, publishedAt: Date.now() }),
    polls: () => polls,
    subscribed: subscribed.promise
  }
}

/** Nearest-rank percentile of `values`. */
export function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}
