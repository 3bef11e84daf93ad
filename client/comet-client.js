/*! fastify-comet browser client: a forever iframe that reconnects and resumes. MIT licence. */
// Plain ES2017, no dependencies, no build step. As a classic <script src> it defines
// window.FastifyComet; under CommonJS (a bundler) it sets module.exports instead.
//
//   const stream = FastifyComet.connect('/events', {
//     callback: 'cometMessage', // the route calls parent.cometMessage(message, id)
//     onMessage (message, id) {},
//     onOpen () {}, // the first message of each connection has arrived
//     onClose (info) {}, // a connection ended: { reason, messages, attempt, delay }
//     onReset (info) {}, // messages after info.lastEventId are lost: reload the page's state
//     minDelay: 500, maxDelay: 30000, // reconnect backoff, milliseconds (minDelay > 0)
//     connectTimeout: 15000 // a connection that delivered nothing by then is given up (> 0)
//   })
//   stream.close()
/* global window, document, performance */
;(function (root, factory) {
  'use strict'
  const api = factory()
  if (typeof module === 'object' && module !== null && typeof module.exports === 'object') module.exports = api
  else root.FastifyComet = api
})(typeof globalThis === 'object' ? globalThis : this, function () {
  'use strict'

  // A plain identifier: the route calls parent.<callback>(message, id), so nothing else can work.
  const IDENTIFIER = /^[A-Za-z_$][\w$]*$/
  // A connection that stayed open this long was healthy: the backoff starts over after it. A
  // message alone does not reset it, or a server that sends a snapshot and fails is hammered.
  const HEALTHY_MS = 10000
  // The watchdog: browsers fire no event on a document cut off mid-stream (nor Firefox on a frame
  // whose navigation failed), so silence is the only sign. The server announces its heartbeat
  // period and never stays silent longer; this many periods of silence mean the connection is lost.
  const SILENT_PERIODS = 3
  // However short the announced heartbeat, a connection is never judged lost on less silence.
  const MIN_SILENCE_MS = 1000
  // A watchdog timer that fires this late ran in a page that was frozen, throttled or busy, which
  // could not have run what arrived meanwhile: the verdict waits this long once more.
  const GRACE_MS = 1000
  // setTimeout fires at once past this: a long silence (a huge heartbeat or connectTimeout) is
  // watched in steps of it.
  const MAX_TIMER_MS = 2147483647

  function connect (url, options) {
    if (typeof url !== 'string' || url === '') throw new TypeError('FastifyComet.connect: url must be a non-empty string')
    options = options || {}
    const callback = options.callback === undefined ? 'cometMessage' : options.callback
    if (typeof callback !== 'string' || !IDENTIFIER.test(callback)) {
      throw new TypeError('FastifyComet.connect: callback must be a plain identifier such as cometMessage')
    }
    const onMessage = options.onMessage
    if (typeof onMessage !== 'function') throw new TypeError('FastifyComet.connect: onMessage must be a function')
    const onOpen = optionalFunction(options, 'onOpen')
    const onClose = optionalFunction(options, 'onClose')
    const onReset = optionalFunction(options, 'onReset')
    const minDelay = delayOption(options, 'minDelay', 500)
    const maxDelay = delayOption(options, 'maxDelay', 30000)
    if (maxDelay < minDelay) throw new RangeError('FastifyComet.connect: maxDelay must not be less than minDelay')
    const connectTimeout = delayOption(options, 'connectTimeout', 15000)
    let lastEventId = options.lastEventId
    if (lastEventId !== undefined && typeof lastEventId !== 'string') {
      throw new TypeError('FastifyComet.connect: lastEventId must be a string')
    }
    // Never overwrite a global the page (or another stream) owns.
    if (callback in window) throw new Error('FastifyComet.connect: window.' + callback + ' is already defined')

    let closed = false
    let iframe // the current connection's frame, if one is open
    let messages = 0 // messages received by the current connection
    let attempt = 0 // connections in a row that ended early (neither rotated nor healthy)
    let openedAt = 0
    let reconnect // what the server's last control message asked: 'now', 'later' or undefined
    let timer // the reconnect timer, while no frame is open
    // The watchdog: one timer per client, set while a frame is open, re-armed only when it fires.
    let watchdog
    let dueAt = 0 // when the watchdog was meant to fire (performance.now())
    let heardAt = 0 // when the current connection last delivered anything, or opened
    let silence = 0 // how long it may stay silent before it is lost; 0: not watched
    let connecting = false // nothing delivered yet: connectTimeout applies
    let excused = false // the watchdog fired late once in this silence: the next verdict stands

    function receive (message, id) {
      if (closed || iframe === undefined) return
      if (typeof id === 'string') lastEventId = id
      if (++messages === 1 && onOpen !== undefined) safely(onOpen)
      safely(onMessage, message, id)
      heard() // after the handler: a slow one is not silence
    }
    // Control messages from the stream, which the comet document's helper hands to this method,
    // never to the callback (see the README).
    receive.cometControl = function (type, detail) {
      if (closed || iframe === undefined) return
      heard()
      if (type === 'open') {
        // The first entry of every document: the server's longest silence, 0 if it promised none.
        const heartbeat = detail !== null && typeof detail === 'object' ? detail.heartbeat : undefined
        silence = typeof heartbeat === 'number' && heartbeat > 0 && isFinite(heartbeat)
          ? Math.max(MIN_SILENCE_MS, SILENT_PERIODS * heartbeat)
          : 0
        watch()
        return
      }
      if (detail === null || typeof detail !== 'object') return // 'beat' and anything unknown
      if (type === 'reconnect') {
        // A full document (rotation) is replaced at once; a server going away, or a client that
        // fell behind, comes back later with the backoff's jitter.
        reconnect = detail.delay === 0 ? 'now' : 'later'
      } else if (type === 'reset') {
        // What this page missed since lastEventId is gone; resume from the position given.
        const missed = typeof detail.lastEventId === 'string' ? detail.lastEventId : undefined
        lastEventId = typeof detail.id === 'string' ? detail.id : undefined
        if (onReset !== undefined) safely(onReset, { lastEventId: missed })
        heard()
      }
    }
    window[callback] = receive

    // A few assignments per entry; the timer is left alone until it fires.
    function heard () {
      heardAt = performance.now()
      excused = false
      if (connecting) {
        // Delivering, so not refused; a server that announces no heartbeat (or an older one) is
        // not watched any further.
        connecting = false
        silence = 0
      }
    }

    // (Re)arms the watchdog for the end of the allowed silence, or stops it.
    function watch () {
      clearTimeout(watchdog)
      watchdog = undefined
      if (silence === 0) return
      dueAt = heardAt + silence
      watchdog = setTimeout(check, Math.min(MAX_TIMER_MS, Math.max(0, dueAt - performance.now())))
    }

    // Compares timestamps rather than counting ticks: throttled timers (a background tab) fire
    // late, but what arrived meanwhile has been delivered and counted.
    function check () {
      watchdog = undefined
      if (closed || iframe === undefined || silence === 0) return
      const now = performance.now()
      if (now - heardAt < silence) return watch()
      if (!excused && now - dueAt > GRACE_MS) {
        excused = true
        dueAt = now + GRACE_MS
        watchdog = setTimeout(check, GRACE_MS)
        return
      }
      disconnect(connecting ? 'timeout' : 'lost')
    }

    function open () {
      timer = undefined
      if (closed) return
      messages = 0
      reconnect = undefined
      openedAt = Date.now()
      heardAt = performance.now()
      connecting = true
      excused = false
      silence = connectTimeout
      const frame = document.createElement('iframe')
      frame.hidden = true
      frame.tabIndex = -1
      frame.title = 'comet stream'
      frame.setAttribute('aria-hidden', 'true')
      // 'load' fires once the comet document is complete, that is when the stream has ended (or
      // an error page loaded instead); browsers seldom fire 'error' on frames, but it means the same.
      const ended = function (event) {
        if (frame === iframe && !isBlank(frame)) disconnect(event.type === 'error' ? 'error' : 'ended')
      }
      frame.addEventListener('load', ended)
      frame.addEventListener('error', ended)
      frame.src = withLastEventId(url, lastEventId)
      iframe = frame
      ;(document.body || document.documentElement).appendChild(frame)
      watch()
    }

    function disconnect (reason) {
      const frame = iframe
      iframe = undefined
      clearTimeout(watchdog)
      watchdog = undefined
      // Removing the frame also aborts its request (a connection given up by the watchdog).
      if (frame.parentNode) frame.parentNode.removeChild(frame)
      const rotated = reconnect === 'now' && reason === 'ended'
      if (rotated || Date.now() - openedAt >= HEALTHY_MS) attempt = 0
      // Capped exponential backoff with full jitter: clients cut off together (a restarted
      // server) come back spread out, and a server that keeps failing is asked less and less often.
      const delay = rotated ? 0 : Math.floor(Math.random() * Math.min(maxDelay, minDelay * Math.pow(2, attempt)))
      const info = { reason: rotated ? 'rotated' : reason, messages, attempt, delay }
      if (!rotated) attempt++
      timer = setTimeout(open, delay)
      if (onClose !== undefined) safely(onClose, info)
    }

    function whenLoaded () {
      window.removeEventListener('load', whenLoaded)
      if (!closed && iframe === undefined && timer === undefined) open()
    }

    // A forever iframe started before the page's 'load' would keep the page loading for good.
    if (document.readyState === 'complete') open()
    else window.addEventListener('load', whenLoaded)

    return {
      /** Ends the stream for good: no reconnect, no more messages; the frame and the global go. */
      close: function () {
        if (closed) return
        closed = true
        window.removeEventListener('load', whenLoaded)
        clearTimeout(timer)
        timer = undefined
        clearTimeout(watchdog)
        watchdog = undefined
        const frame = iframe
        iframe = undefined
        if (frame !== undefined && frame.parentNode) frame.parentNode.removeChild(frame)
        if (window[callback] === receive) {
          try { delete window[callback] } catch (err) { window[callback] = noop }
        }
        if (frame !== undefined && onClose !== undefined) {
          safely(onClose, { reason: 'closed', messages, attempt, delay: undefined })
        }
      },
      /** The id of the last message received, sent as ?lastEventId= on every reconnect. */
      get lastEventId () { return lastEventId },
      get closed () { return closed }
    }
  }

  // A frame fires 'load' for its initial about:blank in some browsers: that is not the stream.
  function isBlank (frame) {
    try {
      const doc = frame.contentDocument
      return doc !== null && doc.URL === 'about:blank'
    } catch (err) {
      return false
    }
  }

  function withLastEventId (url, id) {
    if (id === undefined) return url
    const hash = url.indexOf('#')
    const base = hash === -1 ? url : url.slice(0, hash)
    const last = base.charAt(base.length - 1)
    const separator = base.indexOf('?') === -1 ? '?' : (last === '?' || last === '&' ? '' : '&')
    return base + separator + 'lastEventId=' + encodeURIComponent(id)
  }

  // The application's handlers must not break the stream: their errors are reported, not thrown
  // into the comet document's script.
  function safely (fn, a, b) {
    try {
      fn(a, b)
    } catch (err) {
      if (typeof window.reportError === 'function') window.reportError(err)
      else setTimeout(function () { throw err })
    }
  }

  function optionalFunction (options, name) {
    const value = options[name]
    if (value !== undefined && typeof value !== 'function') throw new TypeError('FastifyComet.connect: ' + name + ' must be a function')
    return value
  }

  function delayOption (options, name, fallback) {
    const value = options[name] === undefined ? fallback : options[name]
    // 0 would reconnect in a hot loop to a server that keeps failing.
    if (typeof value !== 'number' || !(value > 0) || !isFinite(value)) {
      throw new RangeError('FastifyComet.connect: ' + name + ' must be a number of milliseconds, more than 0')
    }
    return value
  }

  function noop () {}

  return { connect }
})
