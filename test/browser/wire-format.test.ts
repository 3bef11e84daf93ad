// The one-script-per-write format in the browser: a throwing callback in the middle of a batch, a
// callback replaced mid-stream, control messages (heartbeats included) that a page's own callback
// never sees, and a comet URL opened as a top-level page.
import t from 'tap'
import { once } from 'node:events'
import { build, listen } from '../helpers.js'
import { eachBrowser } from './browser.js'
import { addParentPage, parentUrl } from './parent-page.js'

eachBrowser(t, (t, browser) => {
  t.test('a callback that throws mid-batch is reported and every other message arrives', async t => {
    const { app } = await build(t)
    addParentPage(app)
    const sent = Array.from({ length: 200 }, (_, n) => ({ n }))
    app.get('/stream', (request, reply) => reply.comet(sent, 'parent.maybeThrow'))
    const page = await browser.page(t)
    await page.addInitScript(() => {
      // In the comet frame: what its helper reports, as an uncaught error would be.
      if (window.parent !== window) {
        addEventListener('error', event => { (window.parent as unknown as { frameErrors: string[] }).frameErrors.push(event.message) })
        return
      }
      (window as unknown as Record<string, unknown>).frameErrors = []
      ;(window as unknown as Record<string, unknown>).maybeThrow = (message: { n: number }) => {
        if (message.n === 100) throw new Error('callback failed on 100')
        window.cometMessage(message)
      }
    })
    await page.goto(parentUrl(await listen(app), '/stream'))
    await page.waitForFunction(() => window.received.length === 199)
    t.same(await page.evaluate(() => window.received.map(({ message }) => (message as { n: number }).n)), sent.map(({ n }) => n).filter(n => n !== 100))
    const frame = await page.frame(url => url.endsWith('/stream'))
    t.ok(frame !== undefined, 'the comet frame')
    t.equal(await frame?.evaluate(() => document.scripts.length), 0, 'and the batch (one script) ran to its end')
    t.match(await page.evaluate(() => (window as unknown as { frameErrors: string[] }).frameErrors), [/callback failed on 100/], 'the error is reported once, in the comet frame')
  })

  t.test('a callback replaced mid-stream gets the following messages', async t => {
    const { app } = await build(t)
    addParentPage(app)
    app.get('/stream', (request, reply) => reply.comet(Array.from({ length: 6 }, (_, n) => n), 'parent.handler'))
    const page = await browser.page(t)
    await page.addInitScript(() => {
      if (window.parent !== window) return
      const seen: string[] = []
      const w = window as unknown as Record<string, unknown>
      w.seen = seen
      w.handler = (n: number) => {
        seen.push(`first:${n}`)
        if (n === 2) w.handler = (later: number) => { seen.push(`second:${later}`) }
      }
    })
    await page.goto(parentUrl(await listen(app), '/stream'))
    await page.waitForFunction(() => ((window as unknown as { seen: string[] }).seen).length === 6)
    t.same(await page.evaluate(() => (window as unknown as { seen: string[] }).seen),
      ['first:0', 'first:1', 'first:2', 'second:3', 'second:4', 'second:5'], 'looked up at each delivery, within one script')
  })

  // A document ends with a control message for the shipped client (reconnect). A page with its own
  // callback gets the same document and must see the messages only; the same page with a callback
  // that has a cometControl method, as the shipped client's has, shows the control message was there.
  const endings = [
    { ending: 'a rotation (maxBytes)', detail: { delay: 0 } },
    { ending: 'a shutdown', detail: { delay: 'backoff' } }
  ]
  for (const { ending, detail } of endings) {
    t.test(`a page without the shipped client gets the messages of a document ended by ${ending}, never its control message`, async t => {
      const { app } = await build(t)
      addParentPage(app)
      const sent = Array.from({ length: 100 }, (_, n) => ({ n, text: 'x'.repeat(50) }))
      const rotating = detail.delay === 0
      app.get('/stream', (request, reply) => reply.comet(rotating
        ? sent // about 40 fit after the padding: the document rotates long before the end
        : async function * ({ signal }) {
          yield * sent.slice(0, 3)
          await once(signal, 'abort') // until the shutdown
        }, { callback: 'parent.cometMessage', maxBytes: rotating ? 8192 : Infinity }))
      const origin = await listen(app)
      const [own, withControls] = await Promise.all([browser.page(t), browser.page(t)])
      await Promise.all([own.goto(parentUrl(origin, '/stream')), withControls.goto(parentUrl(origin, '/stream', { controls: true }))])
      if (!rotating) {
        await Promise.all([own, withControls].map(page => page.waitForFunction(() => window.received.length === 3)))
        await app.close()
      }
      const ended = (): boolean => document.querySelector('iframe')?.contentDocument?.readyState === 'complete'
      await Promise.all([own.waitForFunction(ended), withControls.waitForFunction(ended)])

      const controls = await withControls.evaluate(() => window.controls)
      t.same(controls, [{ type: 'open', detail: { heartbeat: 20000 } }, { type: 'reconnect', detail }], 'the document announced its heartbeat and ended with a control message')
      const received = await own.evaluate(() => window.received.map(({ message }) => message))
      t.ok(received.length > 0 && received.length < sent.length, `${received.length} messages before the end`)
      t.same(received, sent.slice(0, received.length), 'the page got each message, and nothing else')
      t.same(await withControls.evaluate(() => window.received.map(({ message }) => message)), received, 'as did the page that took the control message')
      t.same(await own.evaluate(() => window.controls), [], 'no control message reached the page without cometControl')
      t.same([...own.problems, ...withControls.problems], [], 'no console error, page error or CSP violation')
    })
  }

  t.test('heartbeats reach cometControl only: a page without the shipped client sees nothing of them', async t => {
    const { app } = await build(t)
    addParentPage(app)
    app.get('/stream', (request, reply) => reply.comet(async function * ({ signal }) {
      yield 'a'
      await once(signal, 'abort')
    }, { callback: 'parent.cometMessage', heartbeat: 50 }))
    const origin = await listen(app)
    const [own, withControls] = await Promise.all([browser.page(t), browser.page(t)])
    await Promise.all([own.goto(parentUrl(origin, '/stream')), withControls.goto(parentUrl(origin, '/stream', { controls: true }))])
    await withControls.waitForFunction(() => window.controls.filter(({ type }) => type === 'beat').length >= 5)
    const controls = await withControls.evaluate(() => window.controls)
    t.same(controls[0], { type: 'open', detail: { heartbeat: 50 } }, 'the document announced its heartbeat first')
    t.same(controls.slice(1), controls.slice(1).map(() => ({ type: 'beat', detail: 0 })), 'then heartbeats')
    // One server clock beats both streams: the frame without cometControl ran its heartbeats too,
    // and none of their scripts piled up.
    const frame = await own.frame(url => url.endsWith('/stream'))
    t.ok((await frame!.evaluate(() => document.scripts.length)) <= 1, 'its heartbeat scripts ran and were removed')
    t.same(await own.evaluate(() => window.received.map(({ message }) => message)), ['a'], 'the message only')
    t.same(await own.evaluate(() => window.controls), [], 'no control message')
    t.same([...own.problems, ...withControls.problems], [], 'no console error, page error or CSP violation')
  })

  t.test('a comet document opened as a top-level page calls nothing', async t => {
    const { app } = await build(t)
    // A route that ignores Sec-Fetch-Dest would still be safe: the document itself checks.
    app.addHook('onRequest', async request => { delete request.raw.headers['sec-fetch-dest'] })
    app.get('/stream', (request, reply) => reply.comet(['https://attacker.example/beacon', 'x'], 'navigator.sendBeacon'))
    app.get('/alert', (request, reply) => reply.comet(['pwned'], 'alert'))
    const page = await browser.page(t)
    const origin = await listen(app)
    await page.goto(`${origin}/stream`)
    t.equal(await page.evaluate(() => typeof (window as unknown as Record<string, unknown>).__fastifyComet), 'function', 'the comet document was served and ran')
    await page.goto(`${origin}/alert`)
    t.equal(await page.evaluate(() => typeof (window as unknown as Record<string, unknown>).__fastifyComet), 'function', 'this one too')
    t.same(page.dialogs, [], 'no alert')
    t.same(page.requests.filter(({ method }) => method !== 'GET'), [], 'no beacon')
    t.same(page.problems.filter(problem => !problem.includes('favicon') && !problem.includes('404')), [], 'no error either')
  })

  t.test('the server refuses a top-level navigation to a comet URL', async t => {
    const { app } = await build(t)
    app.get('/stream', (request, reply) => reply.comet(['x'], 'alert'))
    const page = await browser.page(t)
    t.equal(await page.goto(`${await listen(app)}/stream`), 403)
    t.match(await page.evaluate(() => document.body.textContent), 'FST_COMET_NOT_FRAMED')
  })
})
