// Messages built to break out of the comet document (markup, comments, line terminators, lone
// surrogates) reach the page's callback exactly as sent, and none of them runs as code.
import t from 'tap'
import { build, listen } from '../helpers.js'
import { eachBrowser } from './browser.js'
import { addParentPage, parentUrl } from './parent-page.js'

const HOSTILE = [
  '</script>',
  '</SCRIPT >after',
  '<!--',
  '-->',
  '<!-- <script>',
  '<script>window.pwned=1</script>',
  '<img src=x onerror="window.pwned=2">',
  '"); window.pwned=3; ("',
  "'; window.pwned=4; '",
  '\\", window.pwned=5, "\\',
  'line\u2028separator\u2029paragraph',
  '\uD800',
  'a\uDC00b',
  '\uDBFF\uDFFF\uD83D',
  'emoji 😀 👩‍👩‍👧 and accents é ñ',
  'quotes " \' ` and backslashes \\ \\\\ \\u0041',
  'nul \u0000 and controls \u0001\u001f\u007f\r\n\t',
  ']]> &lt; &amp; & <![CDATA[',
  '',
  {
    '</script><script>window.pwned=6</script>': '<!--',
    nested: { '\u2028': ['\uD800', '</script>', { '-->': null }], '\\': '"' },
    numbers: [0, -1.5, 1e21],
    flags: [true, false, null]
  },
  ['<', '>', '&', '</script>', []],
  42,
  null
]

// JSON with every code unit outside printable ASCII written as \uXXXX: the same text in Node and
// in the page for the same value, even for lone surrogates, which would not survive the trip back
// through Playwright as strings. The page runs its own copy of this function (see evaluate below).
function escapedJson (value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, char => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

eachBrowser(t, (t, browser) => {
  t.test('hostile strings and objects arrive exactly as sent and nothing they contain runs', async t => {
    const { app } = await build(t)
    addParentPage(app)
    app.get('/stream', (request, reply) => reply.comet(HOSTILE, 'parent.cometMessage'))
    const origin = await listen(app)

    const page = await browser.page(t)
    await page.goto(parentUrl(origin, '/stream'))
    await page.waitForFunction(count => window.received.length === count, HOSTILE.length)

    const received = await page.evaluate(() => window.received.map(({ message }) =>
      JSON.stringify(message).replace(/[^\x20-\x7e]/g, char => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)))
    t.same(received, HOSTILE.map(escapedJson), 'every message is the value sent, code unit for code unit')

    const frame = await page.frame(url => url === `${origin}/stream`)
    if (frame === undefined) throw new Error('no comet frame')
    t.same(await frame.evaluate(() => ({
      scripts: document.scripts.length,
      elements: [...document.body.children].map(element => element.localName),
      pwned: window.pwned
    })), { scripts: 0, elements: [], pwned: undefined },
    'every script removed itself once run, and no payload made an element')
    t.equal(await page.evaluate(() => window.pwned), undefined, 'no payload ran in the page')
    t.same(page.problems, [], 'no console error, page error or CSP violation')
  })

  // Many writes, so batch boundaries fall between, before and after every kind of payload; each
  // message carries a hostile id too (ids are strings), so the `1,VALUE,ID,` entries are covered.
  t.test('hostile messages with hostile ids, across many batches, arrive exactly as sent and nothing runs', async t => {
    const { app } = await build(t)
    addParentPage(app)
    const strings = HOSTILE.filter(value => typeof value === 'string')
    const sent = Array.from({ length: 2000 }, (_, i) => ({ value: HOSTILE[i % HOSTILE.length], id: `${i} ${strings[i % strings.length]}` }))
    // About 240 KB: more than a dozen scripts of up to about 16 KiB each.
    app.get('/stream', (request, reply) => reply.comet(sent, { callback: 'parent.cometMessage', id: message => message.id, maxBytes: Infinity }))
    const origin = await listen(app)

    const page = await browser.page(t)
    await page.goto(parentUrl(origin, '/stream'))
    await page.waitForFunction(count => window.received.length === count, sent.length)
    const received = await page.evaluate(() => window.received.map(({ message, id }) =>
      JSON.stringify([message, id]).replace(/[^\x20-\x7e]/g, char => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`)))
    t.same(received, sent.map(message => escapedJson([message, message.id])), 'every message and id, code unit for code unit, in order')
    t.equal(await page.evaluate(() => window.pwned), undefined, 'no payload ran in the page')
    const frame = await page.frame(url => url === `${origin}/stream`)
    t.equal(await frame?.evaluate(() => window.pwned), undefined, 'nor in the comet document')
    t.same(page.problems, [], 'no console error, page error or CSP violation')
  })

  // JSON.parse makes "__proto__" an own key, while the same JSON text read as a JavaScript object
  // literal sets the object's prototype instead: such a message must still arrive as it was.
  t.test('an own "__proto__" key arrives as an own key, not as a prototype', async t => {
    const { app } = await build(t)
    addParentPage(app)
    const sent = [
      JSON.parse('{"__proto__":{"pwned":7},"text":"hi"}'),
      JSON.parse('{"list":[{"__proto__":{"pwned":8}}],"text":"\\"__proto__\\": </script><!-- \\u2028 \\ud800"}')
    ]
    app.get('/stream', (request, reply) => reply.comet(sent, 'parent.cometMessage'))
    const origin = await listen(app)

    const page = await browser.page(t)
    await page.goto(parentUrl(origin, '/stream'))
    await page.waitForFunction(() => window.received.length === 2)
    // Compared inside the page: Playwright's own serialization would drop a "__proto__" key.
    t.same(await page.evaluate(() => window.received.map(({ message }) => {
      const { list } = message as { list?: object[] }
      const object = list === undefined ? message as object : list[0]
      return { own: Object.hasOwn(object, '__proto__'), inherited: 'pwned' in object, json: JSON.stringify(message) }
    })), [
      { own: true, inherited: false, json: JSON.stringify(sent[0]) },
      { own: true, inherited: false, json: JSON.stringify(sent[1]) }
    ], 'own keys, at the top and nested, with no prototype set')
    t.same(page.problems, [], 'no console error, page error or CSP violation')
  })
})
