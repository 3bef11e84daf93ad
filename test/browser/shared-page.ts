// What the tests of the shared connection (one stream for every tab) open: a server with a chat
// channel that remembers, and a page that connects to it with the shipped client and records
// what each tab receives. Tabs are pages of one browser context; each test runs on 127.0.0.1,
// where pages have Web Locks, and on a host name, where plain HTTP is not a secure context and
// the tabs elect their leader over BroadcastChannel.
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import type FastifyCometClient from '../../client/comet-client.js'
import { build, listen } from '../helpers.js'
import type { BrowserPage, BrowserSettings } from './browser.js'

export interface Received { message: { n: number }, id: string | undefined, key?: string }

declare global {
  interface Window {
    sharedTest: {
      received: Received[]
      events: Array<string | { reset: { key?: string, lastEventId: string | undefined } }>
      /** typeof navigator.locks: which election the tabs hold. */
      locks: string
      stream: FastifyCometClient.Stream
    }
  }
}

export const HOST = 'comet.test'

/** Both browsers resolve HOST to loopback: a resolver rule in Chromium, a local domain in Firefox. */
export const HOST_SETTINGS: BrowserSettings = {
  chromiumArgs: [`--host-resolver-rules=MAP ${HOST} 127.0.0.1`],
  firefoxPrefs: { 'network.dns.localDomains': HOST }
}

/** The hosts each test runs on, and the Web Locks their pages have. */
export const HOSTS: Array<{ host: string, locks: string }> = [
  { host: '127.0.0.1', locks: 'object' },
  { host: HOST, locks: 'undefined' }
]

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>shared</title><link rel="icon" href="data:,">
<script src="/comet/client.js"></script><script src="/app.js"></script></head><body></body></html>
`

// ?stream= is the comet URL (default /events); ?shared=false opts out; ?lastEventId= is the tab's
// own cursor, as a page rendered with it has (JSON for a multiplexed stream); ?transport= forces one.
const APP = `'use strict'
const params = new URLSearchParams(location.search)
const state = window.sharedTest = { received: [], events: [], locks: typeof navigator.locks }
const cursor = params.get('lastEventId')
state.stream = FastifyComet.connect(params.get('stream') || '/events', {
  minDelay: 50,
  maxDelay: 200,
  shared: params.get('shared') !== 'false',
  transport: params.get('transport') || undefined,
  lastEventId: cursor === null ? undefined : cursor.startsWith('{') ? JSON.parse(cursor) : cursor,
  onMessage (message, id, key) { state.received.push(key === undefined ? { message, id } : { message, id, key }) },
  onOpen () { state.events.push('open') },
  onClose (info) { state.events.push(info.reason) },
  onReset (info) { state.events.push({ reset: info }) }
})
`

export interface SharedServer {
  app: FastifyInstance
  port: number
  /** Publishes { n } for the next n; resolves with its id. */
  publish: () => Promise<string>
  /** The ids published so far, in order. */
  ids: string[]
  /** The channel's position(): the cursor a page rendered now gets. */
  position: () => Promise<string | undefined>
  /** Each GET /events, in order: when (Date.now()) and from which cursor. */
  streams: Array<{ at: number, lastEventId: string | undefined }>
  /** Comet streams open now. */
  open: () => number
}

export async function sharedServer (t: Test): Promise<SharedServer> {
  const { app } = await build(t, { clientPath: '/comet/client.js' })
  const chat = app.comet.channel<{ n: number }>({ name: 'chat', history: 1000 })
  const streams: SharedServer['streams'] = []
  const ids: string[] = []
  addPage(app)
  app.get('/events', (request, reply) => {
    streams.push({ at: Date.now(), lastEventId: (request.query as { lastEventId?: string }).lastEventId })
    return reply.comet(chat, { callback: 'parent.cometMessage', heartbeat: 500 })
  })
  const port = Number(new URL(await listen(app)).port)
  return {
    app,
    port,
    ids,
    streams,
    async publish () {
      const id = await chat.publish({ n: ids.length + 1 })
      ids.push(id)
      return id
    },
    open: () => app.comet.stats().streams.open,
    position: () => chat.position()
  }
}

/** Adds GET /page and its script, GET /app.js; the app must serve the client at /comet/client.js. */
export function addPage (app: FastifyInstance): void {
  app.get('/page', (request, reply) => reply.type('text/html; charset=utf-8').send(HTML))
  app.get('/app.js', (request, reply) => reply.type('text/javascript; charset=utf-8').send(APP))
}

export function pageUrl (host: string, port: number, query: Record<string, string> = {}): string {
  return `http://${host}:${port}/page?${new URLSearchParams(query).toString()}`
}

/** Messages { n } from `from` to `to`, each with its id, as a tab records them. */
export function messages (ids: string[], from: number, to: number): Received[] {
  const list: Received[] = []
  for (let n = from; n <= to; n++) list.push({ message: { n }, id: ids[n - 1] })
  return list
}

/** In the page: whether this tab holds the comet frame. */
export function holdsFrame (): boolean {
  return document.querySelector('iframe') !== null
}

/** The tabs that hold a comet frame. */
export async function leaders (pages: BrowserPage[]): Promise<BrowserPage[]> {
  const holds = await Promise.all(pages.map(page => page.evaluate(holdsFrame)))
  return pages.filter((page, i) => holds[i])
}

/** Publishes `count` messages: every page receives each once, in order, and logs no console error. */
export async function everyTabReceives (t: Test, server: SharedServer, pages: BrowserPage[], count: number): Promise<void> {
  for (let i = 0; i < count; i++) await server.publish()
  await allReceived(pages, count)
  for (const [i, page] of pages.entries()) {
    t.same(await page.evaluate(() => window.sharedTest.received), messages(server.ids, 1, count), `tab ${i}: every message once, in order`)
    t.same(problems(page), [], `tab ${i}: no console error`)
  }
}

/** Waits until every page has received `count` messages. */
export async function allReceived (pages: BrowserPage[], count: number, timeout = 10000): Promise<void> {
  await Promise.all(pages.map(page => page.waitForFunction(n => window.sharedTest.received.length >= n, count, { timeout })))
}

// Chromium says, for each page and frame on an untrustworthy origin (plain HTTP by host name), that
// it ignored helmet's Cross-Origin-Opener-Policy (see upgrade-insecure-requests.test.ts).
const IGNORED_COOP = /^console error: The Cross-Origin-Opener-Policy header has been ignored/

/** The page's console errors, page errors and CSP violations, but for Chromium's note on COOP. */
export function problems (page: BrowserPage): string[] {
  return page.problems.filter(problem => !IGNORED_COOP.test(problem))
}

/** Resolves once `check` holds, looked at every 20 ms (a server-side count); fails after `timeout` ms. */
export async function until (check: () => boolean, what: string, timeout = 10000): Promise<void> {
  const end = Date.now() + timeout
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}
