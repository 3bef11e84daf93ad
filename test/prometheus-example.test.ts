// The README's Prometheus example is example/metrics.js, word for word; this runs it on a real
// server and reads the scraped text back against what happened and against stats().
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import type { FastifyPluginAsync } from 'fastify'
import { Registry } from 'prom-client'
import { build, listen, open } from './helpers.js'

const EXAMPLE = resolve(__dirname, '../example/metrics.js')
const cometMetrics = createRequire(__filename)(EXAMPLE) as FastifyPluginAsync<{ register: Registry }>

/** `name{labels} value` lines of a Prometheus text exposition, keyed by name and labels. */
function parse (text: string): Map<string, number> {
  const samples = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const space = line.lastIndexOf(' ')
    samples.set(line.slice(0, space), Number(line.slice(space + 1)))
  }
  return samples
}

t.test('the README shows example/metrics.js as it is', async t => {
  const readme = readFileSync(resolve(__dirname, '../README.md'), 'utf8')
  t.ok(readme.includes('```js\n' + readFileSync(EXAMPLE, 'utf8') + '```\n'), 'the whole file, in one js block')
})

t.test('the example serves the stats as Prometheus gauges and counters', async t => {
  const { app } = await build(t, { padding: 0, maxStreams: 2 })
  const register = new Registry()
  await app.register(cometMetrics, { register })
  const channel = app.comet.channel()
  app.get('/comet', (request, reply) => reply.comet(channel, 'cb'))
  app.get('/once', (request, reply) => reply.comet(['a', 'b', 'c'], 'cb'))
  const origin = await listen(app)
  const scrape = async (): Promise<Map<string, number>> => {
    const res = await fetch(`${origin}/metrics`)
    t.equal(res.headers.get('content-type'), register.contentType, 'the exposition format')
    return parse(await res.text())
  }

  await (await open(`${origin}/once`)).ended
  const first = await scrape()
  t.equal(first.get('comet_streams_opened_total'), 1)
  t.equal(first.get('comet_streams_ended_total{reason="done"}'), 1)
  t.equal(first.get('comet_streams_ended_total{reason="client-gone"}'), 0, 'every reason is exposed, at 0 too')
  t.equal(first.get('comet_messages_total'), 3)

  const readers = await Promise.all([open(`${origin}/comet`), open(`${origin}/comet`)])
  const refused = await open(`${origin}/comet`)
  t.equal(refused.res.statusCode, 503, 'the third is past maxStreams')
  channel.publish('x')
  await Promise.all(readers.map(reader => reader.waitFor('0,"x",')))
  const second = await scrape()
  const stats = app.comet.stats()
  t.equal(second.get('comet_streams_open'), 2)
  t.equal(second.get('comet_streams_opened_total'), 3, 'a counter set to the total, not added to again')
  t.equal(second.get('comet_streams_ended_total{reason="done"}'), 1, 'the same for labelled counters')
  t.equal(second.get('comet_streams_refused_total'), 1)
  t.equal(second.get('comet_messages_total'), 5)
  t.equal(second.get('comet_written_bytes_total'), stats.bytes, 'the bytes stats() counts')
  t.equal(second.get('comet_channels_open'), 1)
  t.equal(second.get('comet_channel_subscribers'), 2)

  channel.close()
  await Promise.all(readers.map(reader => reader.ended))
  const third = await scrape()
  t.equal(third.get('comet_streams_open'), 0, 'a gauge follows the streams down')
  t.equal(third.get('comet_channel_subscribers'), 0)
  t.equal(third.get('comet_streams_ended_total{reason="done"}'), 3)
})
