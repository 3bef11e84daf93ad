// The browsers behind the browser tests: Debian's Chromium under playwright-core and Debian's
// Firefox ESR under puppeteer-core (over WebDriver BiDi; Playwright cannot drive a stock Firefox),
// never a downloaded one. A test file runs its tests once per browser through `eachBrowser`, on
// the small page interface below, which is all the tests need and each adapter provides. A
// missing browser skips its part of the file with one line saying how to get it, except on CI
// (env CI set), where a missing browser is a failure.
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { chromium, type Page as PlaywrightPage } from 'playwright-core'
import puppeteer, { type Page as PuppeteerPage } from 'puppeteer-core'
import type { Test } from 'tap'

export type BrowserName = 'chromium' | 'firefox'

/** Something to run code in: a page's main frame or one of its frames. */
export interface BrowserFrame {
  evaluate: <R, A = undefined>(fn: (arg: A) => R, arg?: A) => Promise<Awaited<R>>
}

export interface BrowserPage extends BrowserFrame {
  /** Console errors, uncaught page errors and CSP violations, from the page and its frames. */
  problems: string[]
  /** Resolves with the first problem (already seen or still to come) that matches. */
  problem: (matches: RegExp) => Promise<string>
  /** The text of every alert, confirm or prompt, each dismissed at once. */
  dialogs: string[]
  /** Every request the page and its frames made, in order. */
  requests: Array<{ method: string, url: string }>
  /** Navigates and waits for `load`; resolves with the document's HTTP status. */
  goto: (url: string) => Promise<number | undefined>
  waitForFunction: <A = undefined>(fn: (arg: A) => unknown, arg?: A, options?: { timeout?: number }) => Promise<void>
  /**
   * The first of the page's frames (the main one first) whose document's URL matches, read in the
   * document: puppeteer leaves a frame's URL at about:blank until its document has loaded, which a
   * comet document never does.
   */
  frame: (matches: (url: string) => boolean) => Promise<BrowserFrame | undefined>
  /** Runs `fn` in every document of this page (frames included) before the document's own scripts. */
  addInitScript: (fn: () => void) => Promise<void>
  /** Resolves once a response for `url` has started to arrive (its body may go on for ever). */
  waitForResponse: (url: string) => Promise<void>
  /** Resolves once a request for `url` has failed with no response (refused, reset, blocked). */
  requestFailed: (url: string) => Promise<void>
  /** Types `text` into the form field `selector`, as a user would. */
  fill: (selector: string, text: string) => Promise<void>
  click: (selector: string) => Promise<void>
  /** Closes the page as a user closes a tab (its `pagehide` handlers run); resolves once it is gone. */
  close: () => Promise<void>
}

/** A browser context: its pages are tabs of one browser profile, which share storage, locks and BroadcastChannels. */
export interface BrowserContext {
  page: () => Promise<BrowserPage>
}

export interface TestBrowser {
  name: BrowserName
  /** A new page in a fresh context (its own cookies and storage) that closes with `t`. */
  page: (t: Test) => Promise<BrowserPage>
  /** A fresh context that closes with `t`, to open several tabs in. */
  context: (t: Test) => Promise<BrowserContext>
}

/** Launch settings a file may add: Chromium command-line switches, Firefox preferences. */
export interface BrowserSettings {
  chromiumArgs?: string[]
  firefoxPrefs?: Record<string, unknown>
}

const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

// Runs in every frame before its own scripts, so CSP violations show up as console errors too.
const REPORT_CSP_VIOLATIONS = `addEventListener('securitypolicyviolation', event => {
  console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + (event.blockedURI || 'inline code'))
})`

interface Launcher {
  label: string
  path: string
  install: string
  /** Starts the browser; resolves with a context factory and a function that closes the browser. */
  launch: (settings: BrowserSettings) => Promise<{ context: (t: Test) => Promise<BrowserContext>, close: () => Promise<void> }>
}

const LAUNCHERS: Record<BrowserName, Launcher> = {
  chromium: {
    label: 'Chromium',
    path: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    install: 'apt-get install chromium',
    async launch ({ chromiumArgs = [] }) {
      const browser = await chromium.launch({ executablePath: this.path, args: [...CHROMIUM_ARGS, ...chromiumArgs] })
      return {
        async context (t) {
          const context = await browser.newContext()
          t.teardown(() => context.close())
          await context.addInitScript(REPORT_CSP_VIOLATIONS)
          return { page: async () => playwrightPage(await context.newPage()) }
        },
        close: () => browser.close()
      }
    }
  },
  firefox: {
    label: 'Firefox ESR',
    path: process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr',
    install: 'apt-get install firefox-esr',
    async launch ({ firefoxPrefs = {} }) {
      loadPuppeteerBidi()
      const browser = await puppeteer.launch({ browser: 'firefox', executablePath: this.path, headless: true, extraPrefsFirefox: firefoxPrefs })
      return {
        async context (t) {
          const context = await browser.createBrowserContext()
          t.teardown(() => context.close())
          return {
            async page () {
              // A window each: a page in a background tab gets no animation frames and slow timers,
              // where Playwright's Chromium pages all count as visible.
              const page = await context.newPage({ type: 'window' })
              await page.evaluateOnNewDocument(REPORT_CSP_VIOLATIONS)
              return puppeteerPage(page)
            }
          }
        },
        close: () => browser.close()
      }
    }
  }
}

// tap's TypeScript loader (ts-node with experimentalResolver, see tsconfig.json) resolves package
// exports the way Node 16 did, with no `*` in the middle of a subpath pattern: it turns
// chromium-bidi's `./lib/cjs/*.js` into `….js.js`, and puppeteer requires such a path as soon as it
// speaks WebDriver BiDi. So puppeteer's BiDi module (plain JavaScript) is loaded once with Node's
// own resolver; puppeteer's later require of it is then a cache hit.
function loadPuppeteerBidi (): void {
  const tsNode = (process as unknown as Record<symbol, unknown>)[Symbol.for('ts-node.register.instance')] as { enabled: (on?: boolean) => boolean } | undefined
  const wasEnabled = tsNode?.enabled() === true
  if (wasEnabled) tsNode?.enabled(false)
  try {
    createRequire(__filename)('puppeteer-core/internal/bidi/bidi.js')
  } finally {
    if (wasEnabled) tsNode?.enabled(true)
  }
}

function onCI (): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

/**
 * Runs `define` once per browser, inside a subtest named after it: `define` adds that browser's
 * tests to `t`. The browser is launched on first use and closed when its subtest is done. A
 * missing browser gets one skipped subtest saying how to install it (a failure on CI).
 */
export function eachBrowser (t: Test, define: (t: Test, browser: TestBrowser) => void, settings: BrowserSettings = {}): void {
  for (const [name, launcher] of Object.entries(LAUNCHERS) as Array<[BrowserName, Launcher]>) {
    if (!existsSync(launcher.path)) {
      const reason = `no ${launcher.label} at ${launcher.path}: \`${launcher.install}\` (or set ${name.toUpperCase()}_PATH) to run the browser tests in it`
      if (onCI()) t.fail(`${reason}; on CI they must run`)
      else t.test(name, { skip: reason }, () => {})
      continue
    }
    t.test(name, async t => {
      let launched: ReturnType<Launcher['launch']> | undefined
      t.teardown(async () => { await (await launched)?.close() })
      const context = async (t: Test): Promise<BrowserContext> => {
        launched ??= launcher.launch(settings)
        return await (await launched).context(t)
      }
      define(t, {
        name,
        context,
        page: async t => await (await context(t)).page()
      })
    })
  }
}

// The events both libraries emit under the same names, passing objects with the same methods.
interface PageEvents {
  on: ((event: 'console', listener: (message: { type: () => string, text: () => string }) => void) => unknown) &
    ((event: 'pageerror', listener: (err: unknown) => void) => unknown) &
    ((event: 'dialog', listener: (dialog: { message: () => string, dismiss: () => Promise<void> }) => void) => unknown) &
    ((event: 'request', listener: (request: { method: () => string, url: () => string }) => void) => unknown) &
    ((event: 'requestfailed', listener: (request: { url: () => string }) => void) => unknown)
}

/** What events bring, in order, and the first entry (already seen or still to come) that matches. */
class Sightings<T> {
  readonly seen: T[] = []
  readonly #waiters = new Set<(item: T) => void>()

  add (item: T): void {
    this.seen.push(item)
    for (const waiter of this.#waiters) waiter(item)
  }

  first (matches: (item: T) => boolean): Promise<T> {
    return new Promise(resolve => {
      const seen = this.seen.find(matches)
      if (seen !== undefined) return resolve(seen)
      const waiter = (item: T): void => {
        if (!matches(item)) return
        this.#waiters.delete(waiter)
        resolve(item)
      }
      this.#waiters.add(waiter)
    })
  }
}

type Watched = 'problems' | 'problem' | 'dialogs' | 'requests' | 'requestFailed'

/** Completes a page with what it watches: problems, dialogs (each dismissed) and requests. */
function watched (page: PageEvents, methods: Omit<BrowserPage, Watched>): BrowserPage {
  const problems = new Sightings<string>()
  const failed = new Sightings<string>()
  const result: BrowserPage = {
    ...methods,
    problems: problems.seen,
    problem: matches => problems.first(problem => matches.test(problem)),
    dialogs: [],
    requests: [],
    async requestFailed (url) { await failed.first(failedUrl => failedUrl === url) }
  }
  page.on('console', message => {
    if (message.type() === 'error') problems.add(`console error: ${message.text()}`)
  })
  page.on('pageerror', err => problems.add(`page error: ${err instanceof Error ? err.message : String(err)}`))
  page.on('dialog', dialog => {
    result.dialogs.push(dialog.message())
    dialog.dismiss().catch(() => {})
  })
  page.on('request', request => result.requests.push({ method: request.method(), url: request.url() }))
  page.on('requestfailed', request => failed.add(request.url()))
  return result
}

/** The first of `frames` whose document's URL matches; frames that cannot be read are passed over. */
async function findFrame (frames: BrowserFrame[], matches: (url: string) => boolean): Promise<BrowserFrame | undefined> {
  for (const frame of frames) {
    const url = await frame.evaluate(() => location.href).catch(() => undefined)
    if (url !== undefined && matches(url)) return frame
  }
  return undefined
}

function playwrightPage (page: PlaywrightPage): BrowserPage {
  const frame = (frame: PlaywrightPage | ReturnType<PlaywrightPage['mainFrame']>): BrowserFrame => ({
    evaluate: (fn, arg) => frame.evaluate(fn, arg as never) as never
  })
  return watched(page, {
    ...frame(page),
    async goto (url) { return (await page.goto(url))?.status() },
    async waitForFunction (fn, arg, options) { await page.waitForFunction(fn, arg as never, options) },
    frame: matches => findFrame(page.frames().map(frame), matches),
    async addInitScript (fn) { await page.addInitScript(fn) },
    async waitForResponse (url) { await page.waitForResponse(url) },
    fill: (selector, text) => page.fill(selector, text),
    click: selector => page.click(selector),
    async close () {
      const closed = new Promise(resolve => page.once('close', resolve))
      await page.close({ runBeforeUnload: true })
      await closed
    }
  })
}

function puppeteerPage (page: PuppeteerPage): BrowserPage {
  const frame = (frame: PuppeteerPage | ReturnType<PuppeteerPage['mainFrame']>): BrowserFrame => ({
    evaluate: (fn, arg) => frame.evaluate(fn as never, arg) as never
  })
  return watched(page, {
    ...frame(page),
    async goto (url) { return (await page.goto(url))?.status() },
    async waitForFunction (fn, arg, options) { await page.waitForFunction(fn as never, options ?? {}, arg) },
    frame: matches => findFrame(page.frames().map(frame), matches),
    async addInitScript (fn) { await page.evaluateOnNewDocument(fn) },
    async waitForResponse (url) { await page.waitForResponse(url) },
    fill: (selector, text) => page.locator(selector).fill(text),
    click: selector => page.click(selector),
    async close () {
      const closed = new Promise(resolve => page.once('close', resolve))
      await page.close({ runBeforeUnload: true })
      await closed
    }
  })
}
