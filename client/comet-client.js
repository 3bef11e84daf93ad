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
//     minDelay: 500, maxDelay: 30000 // reconnect backoff, milliseconds
//   })
//   stream.close()
/* global window, document */
;(function (root, factory) {
  'use strict'
  const api = factory()
  if (typeof module === 'object' && module !== null && typeof module.exports === 'object') module.exports = api
  else root.FastifyComet = api
})(typeof globalThis === 'object' ? globalThis : this, function () {
  'use strict'

  // A plain identifier: the route calls parent.<callback>(message, id), so nothing else can work.
  const IDENTIFIER = /^[A-Za-z_$][\w$]*$/

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
    let lastEventId = options.lastEventId
    if (lastEventId !== undefined && typeof lastEventId !== 'string') {
      throw new TypeError('FastifyComet.connect: lastEventId must be a string')
    }
    // Never overwrite a global the page (or another stream) owns.
    if (callback in window) throw new Error('FastifyComet.connect: window.' + callback + ' is already defined')

    let closed = false
    let iframe // the current connection's frame, if one is open
    let messages = 0 // messages received by the current connection
    let attempt = 0 // connections in a row that ended without a message
    let timer

    function receive (message, id) {
      if (closed || iframe === undefined) return
      removeDeliveredScripts(iframe)
      if (typeof id === 'string') lastEventId = id
      attempt = 0
      if (++messages === 1 && onOpen !== undefined) safely(onOpen)
      safely(onMessage, message, id)
    }
    // Control messages from the stream (see the README): a reset says that what this page missed
    // since lastEventId is gone, and gives the position to resume from next time.
    receive.cometControl = function (type, detail) {
      if (closed || iframe === undefined || type !== 'reset' || detail === null || typeof detail !== 'object') return
      removeDeliveredScripts(iframe)
      const missed = typeof detail.lastEventId === 'string' ? detail.lastEventId : undefined
      lastEventId = typeof detail.id === 'string' ? detail.id : undefined
      if (onReset !== undefined) safely(onReset, { lastEventId: missed })
    }
    window[callback] = receive

    function open () {
      timer = undefined
      if (closed) return
      messages = 0
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
    }

    function disconnect (reason) {
      const frame = iframe
      iframe = undefined
      if (frame.parentNode) frame.parentNode.removeChild(frame)
      // Capped exponential backoff with full jitter: clients cut off together (a restarted
      // server) come back spread out, and a server that keeps failing is asked less and less often.
      const delay = Math.floor(Math.random() * Math.min(maxDelay, minDelay * Math.pow(2, attempt)))
      const info = { reason, messages, attempt, delay }
      attempt++
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

  // The comet document only grows: each message is one more <script>. Called from inside the
  // message's own script, this removes that script and whatever came before it (heartbeat
  // newlines, earlier scripts), so a long stream holds a handful of nodes, not thousands.
  function removeDeliveredScripts (frame) {
    let doc
    try { doc = frame.contentDocument } catch (err) {}
    const script = doc ? doc.currentScript : null
    if (!script || !script.parentNode) return // another origin's frame: nothing we may touch
    const parent = script.parentNode
    while (parent.firstChild !== null && parent.firstChild !== script) parent.removeChild(parent.firstChild)
    parent.removeChild(script)
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
    if (typeof value !== 'number' || !(value >= 0) || !isFinite(value)) {
      throw new RangeError('FastifyComet.connect: ' + name + ' must be a number of milliseconds, 0 or more')
    }
    return value
  }

  function noop () {}

  return { connect }
})
