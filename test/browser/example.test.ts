// The example (example/server.js) works in a browser under the plugin's default policy: the clock
// ticks, and a chat message sent from one page's form shows up, as text, in another page's log.
import t from 'tap'
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import fastifyComet from '../../lib/index.js'
import { eachBrowser } from './browser.js'

// The example requires the built package ('..'); here it gets lib/ itself, so the test runs the
// current source and coverage never counts dist/ (test/example.test.ts runs the built one).
const { build } = t.mockRequire('../../example/server.js', { '../../dist/index.js': fastifyComet }) as {
  build: (options?: FastifyServerOptions) => FastifyInstance
}

eachBrowser(t, (t, browser) => {
  t.test('the clock ticks and a chat message typed in one page appears in another', async t => {
    const app = build()
    t.teardown(() => app.close())
    const origin = await app.listen({ port: 0, host: '127.0.0.1' })
    const alice = await browser.page(t)
    const bob = await browser.page(t)

    // Each page is rendered with a cursor and its stream starts there: a line posted once the pages
    // have loaded reaches them, whether or not their streams have started yet.
    await Promise.all([alice.goto(origin), bob.goto(origin)])

    await alice.waitForFunction(() => {
      const seen = ((window as unknown as { seenTimes?: Set<string> }).seenTimes ??= new Set())
      const time = document.getElementById('clock')?.textContent ?? ''
      if (/^\d\d:\d\d:\d\d\.\d$/.test(time)) seen.add(time)
      return seen.size >= 3
    })
    t.pass('the clock showed three different times')

    const text = 'Hello <b>Bob</b> </script><!-- \u2028 😀'
    await alice.fill('input[name=text]', text)
    await alice.click('button')
    const chatLog = (): Array<string | null> => [...document.querySelectorAll('#chat-log li')].map(item => item.lastChild?.textContent ?? null)
    await bob.waitForFunction(() => document.querySelectorAll('#chat-log li').length === 1)
    t.same(await bob.evaluate(chatLog), [text], "Bob's log shows the message as text")
    t.equal(await bob.evaluate(() => document.querySelectorAll('#chat-log b').length), 0, 'and not as markup')
    await alice.waitForFunction(() => document.querySelectorAll('#chat-log li').length === 1)
    t.same(await alice.evaluate(chatLog), [text], "so does Alice's")
    t.equal(await alice.evaluate(() => document.querySelector<HTMLInputElement>('input[name=text]')?.value), '', "Alice's form was cleared")

    t.same(alice.problems, [], 'no console error, page error or CSP violation for Alice')
    t.same(bob.problems, [], 'nor for Bob')
  })
})
