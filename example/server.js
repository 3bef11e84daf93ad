'use strict'
// The fastify-comet example: Play's Comet clock and a small chat on one page.
//   npm run example             http://127.0.0.1:3000
//   PORT=8080 HOST=0.0.0.0 npm run example
//   REDIS_URL=redis://127.0.0.1:6379 npm run example    the chat shared by every instance on that Redis
const { readFile } = require('node:fs/promises')
const { join } = require('node:path')
const { setInterval } = require('node:timers/promises')
const Fastify = require('fastify')
const fastifyComet = require('..')

// Served as files: helmet's CSP (nonce-only inline scripts and styles) allows no inline code.
const PUBLIC_FILES = {
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/app.css': ['app.css', 'text/css; charset=utf-8']
}
// Lines the page shows as it is rendered; older ones are in the channel's history only.
const RENDERED_LINES = 50

const chatBody = {
  type: 'object',
  required: ['text'],
  properties: {
    text: { type: 'string', minLength: 1, maxLength: 500, pattern: '\\S' }
  }
}

/**
 * The example app, not listening yet: `build({ logger: true }).listen(...)`. With a `broker`
 * (cometRedis() from fastify-comet/redis), the chat is shared by every instance that uses it.
 */
function build (options = {}, broker) {
  const app = Fastify(options)
  // clientPath serves the browser client, which reconnects when a stream rotates or fails.
  app.register(fastifyComet, { clientPath: '/comet/client.js', broker })

  for (const [url, [file, type]] of Object.entries(PUBLIC_FILES)) {
    app.get(url, async (request, reply) => reply.type(type).send(await readFile(join(__dirname, 'public', file))))
  }

  // The time every 100 ms until the client leaves (the signal aborts). The page gets it from /live;
  // /clock and /chat stream one source each, for curl and for pages of your own.
  app.get('/clock', (request, reply) => reply.comet(({ signal }) => clock(signal), 'parent.clockTick'))

  // Accepts JSON and plain HTML form posts ({ text }).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body)))
  })

  // Registered after the plugin, so fastify.comet is there.
  app.register(async app => {
    // Chat fan-out: every POST /chat is published here, to every open /chat stream. The channel
    // keeps its last 200 lines, so a reload or a rotation resumes where the page was and loses no
    // line. Named, so that with a broker it is one channel for every instance: a line posted to
    // one reaches the pages of all, and a page resumes on whichever instance it reconnects to.
    const room = app.comet.channel({ name: 'chat', history: 200, maxQueue: 256 })
    // The last lines this instance published, with their ids, for the page's first render.
    const lines = []

    app.get('/chat', (request, reply) => reply.comet(room, 'parent.chatMessage'))

    // The page's one stream: the clock and the chat multiplexed, so a tab holds one connection
    // (and, with the shipped client, every tab of the browser shares it).
    app.get('/live', (request, reply) => reply.comet({ clock: ({ signal }) => clock(signal), chat: room }, 'parent.live'))

    // The page is rendered with the chat's last lines and a cursor: the id of the newest line shown
    // (or the channel's position when none is), so its stream delivers every line published after
    // the render, exactly once, and none is lost between the render and the stream.
    app.get('/', async (request, reply) => {
      const shown = lines.slice(-RENDERED_LINES)
      const cursor = shown.length > 0 ? shown[shown.length - 1].id : await room.position()
      const page = await readFile(join(__dirname, 'public', 'index.html'), 'utf8')
      return reply.type('text/html; charset=utf-8').send(page
        .replace('<ol id="chat-log" class="chat-log">', `<ol id="chat-log" class="chat-log" data-cursor="${escapeHtml(cursor)}">`)
        .replace('</ol>', shown.map(renderLine).join('') + '</ol>'))
    })

    app.post('/chat', { schema: { body: chatBody } }, async (request, reply) => {
      const line = { text: request.body.text, time: new Date().toISOString() }
      const id = await room.publish(line)
      lines.push({ ...line, id })
      if (lines.length > RENDERED_LINES) lines.shift()
      reply.code(204)
    })
  })

  return app
}

// The timer belongs to the signal: when the stream ends, it stops and the generator ends with it.
async function * clock (signal) {
  const ticks = setInterval(100, undefined, { signal })
  for (;;) {
    await ticks.next()
    yield formatTime(new Date())
  }
}

// The same markup as the page's script builds for a line (app.js), escaped: a line is text.
function renderLine (line) {
  return `<li><time datetime="${escapeHtml(line.time)}">${escapeHtml(line.time.slice(11, 19))}</time>${escapeHtml(line.text)}</li>`
}

function escapeHtml (text) {
  return text.replace(/[&<>"']/g, char => `&#${char.charCodeAt(0)};`)
}

// 14:05:09.3: hours, minutes, seconds and tenths, in the server's time zone.
function formatTime (date) {
  const pad = number => String(number).padStart(2, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${Math.floor(date.getMilliseconds() / 100)}`
}

/* c8 ignore start: the command line entry point, run by `npm run example` */
if (require.main === module) {
  // ioredis is loaded only then: without REDIS_URL the example needs no Redis at all.
  const broker = process.env.REDIS_URL ? require('fastify-comet/redis').cometRedis({ url: process.env.REDIS_URL }) : undefined
  const app = build({ logger: true }, broker)
  app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1' })
    .catch(err => {
      app.log.error(err)
      process.exit(1)
    })
}
/* c8 ignore stop */

module.exports = { build }
