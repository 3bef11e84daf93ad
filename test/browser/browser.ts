// The browser behind the browser tests: Debian's Chromium under playwright-core, never a
// downloaded one. Without it a file skips itself with one line saying how to get it, except on
// CI (env CI set), where a missing browser is a failure.
import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'
import type { Test } from 'tap'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

// Runs in every frame before its own scripts, so CSP violations show up as console errors too.
const REPORT_CSP_VIOLATIONS = `addEventListener('securitypolicyviolation', event => {
  console.error('CSP violation: ' + event.violatedDirective + ' blocked ' + (event.blockedURI || 'inline code'))
})`

function onCI (): boolean {
  const ci = process.env.CI
  return ci !== undefined && ci !== '' && ci !== '0' && ci.toLowerCase() !== 'false'
}

export interface WatchedPage {
  page: Page
  /** Console errors, uncaught page errors and CSP violations, from the page and its frames. */
  problems: string[]
}

export interface Chromium {
  /** A new page in a fresh context that closes with the test. */
  page: (t: Test) => Promise<WatchedPage>
}

/**
 * The file's browser, launched on first use and closed when the file's tests are done; undefined
 * when Chromium is missing, in which case the file must define no tests (it is skipped or failed).
 */
export function useChromium (t: Test, extraArgs: string[] = []): Chromium | undefined {
  if (!existsSync(CHROMIUM_PATH)) {
    const reason = `no Chromium at ${CHROMIUM_PATH}: \`apt-get install chromium\` (or set CHROMIUM_PATH) to run the browser tests`
    if (onCI()) t.fail(`${reason}; on CI they must run`)
    else t.plan(0, reason)
    return undefined
  }
  let launched: Promise<Browser> | undefined
  t.teardown(async () => { await (await launched)?.close() })
  return {
    async page (t) {
      launched ??= chromium.launch({ executablePath: CHROMIUM_PATH, args: [...ARGS, ...extraArgs] })
      const context = await (await launched).newContext()
      t.teardown(() => context.close())
      await context.addInitScript(REPORT_CSP_VIOLATIONS)
      const page = await context.newPage()
      const watched: WatchedPage = { page, problems: [] }
      page.on('console', message => {
        if (message.type() === 'error') watched.problems.push(`console error: ${message.text()}`)
      })
      page.on('pageerror', err => watched.problems.push(`page error: ${err.message}`))
      return watched
    }
  }
}
