'use strict'
// Prometheus metrics for fastify-comet, read from fastify.comet.stats() when Prometheus scrapes:
// nothing runs between scrapes. Register it after fastify-comet, with your prom-client registry:
//   fastify.register(require('./metrics'), { register })
const { Counter, Gauge } = require('prom-client')

async function cometMetrics (fastify, { register }) {
  const registers = [register]
  const gauge = (name, help, read) => new Gauge({
    name, help, registers, collect () { this.set(read(fastify.comet.stats())) }
  })
  // The plugin keeps the totals: at each scrape a counter is reset and set to them.
  // `read` returns [labels, value] pairs.
  const counter = (name, help, read, labelNames = []) => new Counter({
    name,
    help,
    labelNames,
    registers,
    collect () {
      this.reset()
      for (const [labels, value] of read(fastify.comet.stats())) this.inc(labels, value)
    }
  })

  gauge('comet_streams_open', 'Comet streams open now', s => s.streams.open)
  counter('comet_streams_opened_total', 'Comet streams opened', s => [[{}, s.streams.opened]])
  counter('comet_streams_ended_total', 'Comet streams ended, by reason',
    s => Object.entries(s.streams.endReasons).map(([reason, count]) => [{ reason }, count]), ['reason'])
  counter('comet_streams_refused_total', 'Comet streams refused past maxStreams (503)', s => [[{}, s.streams.refused]])
  counter('comet_messages_total', 'Messages handed to comet streams', s => [[{}, s.messages]])
  counter('comet_written_bytes_total', 'Bytes written to comet responses', s => [[{}, s.bytes]])
  gauge('comet_channels_open', 'Comet channels open now', s => s.channels.open)
  gauge('comet_channel_subscribers', 'Streams subscribed to comet channels now', s => s.channels.subscribers)

  fastify.get('/metrics', async (request, reply) => {
    reply.type(register.contentType)
    return register.metrics()
  })
}

module.exports = cometMetrics
