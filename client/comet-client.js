/*! fastify-comet browser client: a forever iframe that reconnects and resumes. MIT licence. */
// Plain ES2017, no dependencies, no build step. As a classic <script src> it defines
// window.FastifyComet; under CommonJS (a bundler) it sets module.exports instead.
//
//   const stream = FastifyComet.connect('/events', {
//     callback: 'cometMessage', // the route calls parent.cometMessage(message, id, key)
//     onMessage (message, id, key) {}, // key: undefined unless the route streams several sources
//     onOpen () {}, // the first message of each connection has arrived
//     onClose (info) {}, // a connection ended: { reason, messages, attempt, delay }
//     onReset (info) {}, // { key, lastEventId }: messages after it are lost, reload that state
//     minDelay: 500, maxDelay: 30000, // reconnect backoff, milliseconds (minDelay > 0)
//     connectTimeout: 15000, // a connection that delivered nothing by then is given up (> 0)
//     lastEventId: undefined, // a cursor to start after: an id, or { key: id } for several sources
//     shared: true, // one connection for every tab of this origin (see below)
//     transport: 'auto', // 'stream', 'poll', or 'auto': stream, and poll where a hop buffers (below)
//     probeTimeout: 3000 // 'auto': a stream that delivered nothing by then is taken as held back
//   })
//   stream.lastEventId // the cursor: the last id, or a copy of { key: id } for several sources
//   stream.transport // 'stream' or 'poll': how the messages of this tab arrive now
//   stream.close()
//
// Cursors. A route that streams one source gives each message an id; a route that streams several
// (`reply.comet({ chat, alerts })`) gives each key ids of its own, and the client sends back the
// JSON text of { key: last id } as ?lastEventId=. It learns that a stream has keys from an object
// lastEventId, the `keys` of the `open` control message or a message with a key.
//
// One connection for every tab. Tabs and frames of one origin that connect() to the same URL with
// the same callback share one connection: one tab, the leader, holds the frame and hands every
// message, control message, onOpen and onClose to the others through a BroadcastChannel, in its
// own order. The leader is the holder of a Web Lock where navigator.locks exists (a secure
// context: https, localhost); on plain HTTP by host name, an election over the BroadcastChannel:
// a tab claims, and leads if no leader answers and no tab with a smaller random number claims
// within CLAIM_MS; the leader says it is there every BEAT_MS, one silent for LEADER_LOST_MS is
// replaced, and of two leaders that hear each other the one with the larger number steps down.
// A leader that closes, navigates away or is frozen (back/forward cache) lets go at once, and
// the next one resumes from the newest ids its tab has seen. Every shared tab remembers the last
// SEEN_IDS ids of each key and drops a message it has had, so a handover that replays a little,
// or two leaders for a moment, repeat nothing (ids must be unique per key, as resume needs).
// A tab that starts from a cursor of its own (rendered with channel.position(), or back from the
// back/forward cache) while another tab leads asks the leader where the shared stream is. Where
// its cursor is (a page rendered just now), it simply follows. Behind it, the tab catches up on a
// connection of its own, keeping the shared messages after the answer aside, until that
// connection delivers where the leader was (or one of the kept messages), then drops that
// connection and takes what it kept after that point. Without an answer within ASK_MS, it
// catches up all the same, until its connection delivers a kept message (or, for a key with
// nothing kept, until the server has been idle: a heartbeat).
// close() stops one tab; the connection ends with the last. shared: false, or a browser without
// BroadcastChannel, gives each tab a connection of its own. Shared or not, a page going into the
// back/forward cache (or frozen) lets its connection go, and one restored (pageshow with
// persisted) connects again at once, from its cursor.
//
// Buffering hops. A proxy or scanner that holds each response until it ends passes nothing of a
// forever document. With transport 'auto', a stream that has delivered nothing (not even its
// first script, written at once) within probeTimeout is given up, and the client polls instead:
// each poll is a fetch() of the same route (?transport=poll with the header Comet-Format: json,
// answered with a JSON array of the entries a document's scripts would carry; a short document in
// a frame where fetch is missing, or where a hop dropped the header and a document came back)
// that ends as soon as it has delivered something, or after the server's poll timeout; the next
// poll starts at once, and the first of a series asks for an answer at once (&wait=0), which says
// how long the server holds polls. Polls need the page's CSP to allow connect-src to the route
// ('self', as the plugin's helmet configuration has it). It tries
// a stream again after STREAM_RETRY_MS, then less and less often while streams stay held back.
// Polls that follow one another count as one connection for onOpen, onClose and their messages.
// Nothing is lost on the way: a reconnect resumes from the cursor, and for what it has no position
// for (no id yet, or a key without one) it sends ?since=, the milliseconds since the last entry it
// heard (or since the connection that delivered nothing opened), plus SINCE_MARGIN_MS: a channel
// with history replays what was published in that window, by the server's clock.
/* global window, document, performance, navigator, BroadcastChannel, AbortController, URL, fetch */
;(function (root, factory) {
  'use strict'
  const api = factory()
  if (typeof module === 'object' && module !== null && typeof module.exports === 'object') module.exports = api
  else root.FastifyComet = api
})(typeof globalThis === 'object' ? globalThis : this, function () {
  'use strict'

  // A plain identifier: the route calls parent.<callback>(message, id), so nothing else can work.
  const IDENTIFIER = /^[A-Za-z_$][\w$]*$/
  // The keys of a multiplexed stream, as the server allows them.
  const KEY = /^[A-Za-z0-9_-]{1,64}$/
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
  // The election without Web Locks: how long a claim waits for an answer, how often the leader
  // says it is there, and how long a silent leader is waited for. A leader that leaves says so,
  // so these bound only a leader that vanished without a word (or whose word was lost: Firefox
  // closing a page, seen in a test): LEADER_LOST_MS + CLAIM_MS stays under the 2 s a handover may
  // take. A background tab's timers may be throttled to once a second, and a claim is answered by
  // any live leader at once.
  const CLAIM_MS = 250
  const BEAT_MS = 500
  const LEADER_LOST_MS = 1500
  // Ids remembered per key by a shared tab, to drop what a handover or a catch-up repeats.
  const SEEN_IDS = 1024
  // How long a tab with a cursor of its own waits for the leader to say where the shared stream
  // is before it catches up on a connection of its own without knowing.
  const ASK_MS = 500
  // Transports: a poll's longest wait until its server says how long it holds polls, the first
  // wait before a stream is tried again while polling (doubled while streams stay held back, up
  // to the cap), and what ?since= adds to the time since the last entry heard: two one-way
  // delays, so nothing published just after that entry falls outside the window.
  const TRANSPORTS = ['auto', 'stream', 'poll']
  const POLL_TIMEOUT_MS = 25000
  const STREAM_RETRY_MS = 60000
  const MAX_STREAM_RETRY_MS = 600000
  const SINCE_MARGIN_MS = 1000
  // Polls read with fetch() as JSON (asked with this header): a few hundred bytes each, where a
  // document poll carries the helper script and a document's headers. Without fetch, document polls.
  const FETCH = typeof fetch === 'function' && typeof AbortController === 'function'
  const JSON_POLL_HEADERS = { 'Comet-Format': 'json' }

  const LEADER = 'leader'
  const FOLLOWER = 'follower'
  const CANDIDATE = 'candidate'

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
    const initial = cursorOption(options.lastEventId)
    const shared = options.shared === undefined ? true : options.shared
    if (typeof shared !== 'boolean') throw new TypeError('FastifyComet.connect: shared must be a boolean')
    const mode = options.transport === undefined ? 'auto' : options.transport
    if (TRANSPORTS.indexOf(mode) === -1) throw new TypeError("FastifyComet.connect: transport must be 'auto', 'stream' or 'poll'")
    const probeTimeout = delayOption(options, 'probeTimeout', 3000)
    // Never overwrite a global the page (or another stream) owns.
    if (callback in window) throw new Error('FastifyComet.connect: window.' + callback + ' is already defined')

    const sharing = shared && typeof BroadcastChannel === 'function'
    const positions = cursor(initial, sharing)
    let closed = false
    let started = false // the page has loaded and the stream was started
    let suspended = false // the page is in the back/forward cache, or frozen
    let connection // the current connection, if one is open: its frame, or a JSON poll's AbortController
    let messages = 0 // messages received by the current connection (a follower: the leader's)
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
    // Transports (see the header).
    let transport = mode === 'poll' ? 'poll' : 'stream' // of the next connection; a follower: the leader's
    let polling = false // the current connection is a poll
    let polled = false // the last connection was a poll that ended as polls do: the next one goes on from it
    // The first poll after a stream was taken as held back: answered at once (&wait=0), it tells
    // a hop that buffers (polls get through) from a server that does not answer at all (a refused
    // connection, which Firefox does not report either), and is watched for connectTimeout only.
    let confirming = false
    let quick = false // the current connection is a poll asked to answer at once (&wait=0)
    let jsonPolls = FETCH // polls are fetch()es of JSON, until a hop drops their header
    let openedWith = 0 // messages when the current connection opened (polls add theirs up)
    let pollTimeout = POLL_TIMEOUT_MS // as the server last announced it
    let retryDelay = STREAM_RETRY_MS
    let retryAt = 0 // while polling: when to try a stream again (performance.now())
    let heardUntil // performance.now() up to which the page has what was published (see ?since=)

    // Sharing (see the header); all unused without it.
    const tab = Math.random() // this tab's place in the election without Web Locks: smaller wins
    let locks = sharing && typeof navigator === 'object' && navigator.locks != null && typeof AbortController === 'function'
      ? navigator.locks
      : undefined
    let name // the BroadcastChannel's and the lock's name
    let link // the BroadcastChannel, while this tab takes part
    let role // LEADER, FOLLOWER, CANDIDATE (electing without locks) or undefined (alone, or joining)
    let ticker // the election's timer: a claim's wait, the leader's beat, or the wait for a silent leader
    let lockRequest // an AbortController per join: its lock request, and a token that it is current
    let release // lets go of the lock, while this tab holds it
    // The leader's events (messages, control messages, onOpen, onClose), run in this tab and posted
    // to the others together once the comet script that brought them has run: posted first, so a
    // handler that changes a message changes it for its own tab only.
    let outbox = []
    let relaying = false // a follower is handing the leader's events to the page's global
    let sharedMessages = 0 // messages of the leader's current connection, as a follower saw them
    // While this tab catches up from its own cursor: the shared messages kept aside, per key of
    // that cursor still behind the shared stream; where the leader said the shared stream was
    // (its cursor, in its order of events); and the wait for that answer.
    let catching
    let target
    let asking

    function receive (message, id, key) {
      if (relaying) return relayed(message, id, key)
      if (closed || connection === undefined) return
      if (++messages === 1) {
        if (role === LEADER) send(['o'])
        else if (onOpen !== undefined) safely(onOpen)
      }
      if (role === LEADER) send(['m', message, id, key])
      else if (catching !== undefined) caughtUpTo(message, id, key)
      else deliver(message, id, key)
      heard() // after the handler: a slow one is not silence
    }
    // Control messages from the stream, which the comet document's helper hands to this method,
    // never to the callback (see the README).
    receive.cometControl = function (type, detail) {
      if (relaying) return control(type, detail)
      if (closed || connection === undefined) return
      heard()
      if (role === LEADER) send(['c', type, detail])
      if (type === 'open') {
        // The first entry of every document: the server's longest silence, 0 if it promised none.
        const heartbeat = isObject(detail) ? detail.heartbeat : undefined
        const poll = isObject(detail) ? detail.poll : undefined
        if (isDelay(poll)) pollTimeout = poll
        // A poll has no heartbeat: it ends within the server's poll timeout, or it is lost.
        if (polling) silence = pollSilence()
        else silence = isDelay(heartbeat) ? Math.max(MIN_SILENCE_MS, SILENT_PERIODS * heartbeat) : 0
        watch()
      } else if (type === 'reconnect' && isObject(detail)) {
        // A full document (rotation) is replaced at once; a server going away, or a client that
        // fell behind, comes back later with the backoff's jitter.
        reconnect = detail.delay === 0 ? 'now' : 'later'
      } else if (type === 'beat' && catching !== undefined) {
        caughtUpWhenIdle()
      }
      if (role === LEADER) return
      control(type, detail)
      heard()
    }
    window[callback] = receive

    // What a control message means to the page, whichever tab's connection it came through.
    function control (type, detail) {
      if (closed || !isObject(detail)) return // 'beat' and anything unknown
      if (type === 'open') {
        if (Array.isArray(detail.keys)) positions.multiplex()
      } else if (type === 'reset') {
        const key = typeof detail.key === 'string' ? detail.key : undefined
        // A tab catching up has a reset of its own to hear, from its own connection.
        if (relaying && catching !== undefined && catching.has(key)) return
        // What this page missed since lastEventId is gone; resume from the position given.
        const missed = typeof detail.lastEventId === 'string' ? detail.lastEventId : undefined
        positions.reset(key, typeof detail.id === 'string' ? detail.id : undefined)
        if (onReset !== undefined) safely(onReset, key === undefined ? { lastEventId: missed } : { key, lastEventId: missed })
      }
    }

    function deliver (message, id, key) {
      if (positions.accept(id, key)) safely(onMessage, message, id, key)
    }

    // A few assignments per entry; the timer is left alone until it fires.
    function heard () {
      heardAt = performance.now()
      excused = false
      if (connecting) {
        // Delivering, so not refused nor held back; a server that announces no heartbeat (or an
        // older one) is not watched any further, except for a poll, which must end.
        connecting = false
        if (!polling) {
          silence = 0
          retryDelay = STREAM_RETRY_MS
        }
      }
    }

    // How long a poll may stay silent: the server's wait (none for a quick one), then connectTimeout.
    function pollSilence () {
      return (quick ? 0 : pollTimeout) + connectTimeout
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
      if (closed || connection === undefined || silence === 0) return
      const now = performance.now()
      if (now - heardAt < silence) return watch()
      if (!excused && now - dueAt > GRACE_MS) {
        excused = true
        dueAt = now + GRACE_MS
        watchdog = setTimeout(check, GRACE_MS)
        return
      }
      // A stream that delivered nothing, not even the script written at its start, in 'auto':
      // a hop holds it back, or the network is too slow for streaming; polls get through. But a
      // frame whose document has begun got a response, and a busy browser may not have run its
      // first script yet: it has until connectTimeout (a hop that passes the head on and holds
      // the body is noticed then).
      if (connecting && !polling && mode === 'auto') {
        if (silence < connectTimeout && hasBegun(connection)) {
          silence = connectTimeout
          return watch()
        }
        return disconnect('buffered')
      }
      disconnect(connecting ? 'timeout' : 'lost')
    }

    function open () {
      timer = undefined
      if (closed || suspended) return
      // A follower's transport is its leader's; its own connection (catching up) keeps its mode.
      polling = (mode === 'auto' ? transport : mode) === 'poll'
      const json = polling && jsonPolls
      openedWith = messages
      // A JSON poll that starts a series asks to be answered at once: that answer says how long
      // the server holds polls, which a document says in every poll.
      quick = polling && (confirming || (json && !polled))
      if (!polled) {
        messages = 0
        openedAt = Date.now()
      }
      polled = false
      reconnect = undefined
      heardAt = performance.now()
      connecting = true
      excused = false
      if (polling) silence = pollSilence()
      else silence = mode === 'auto' ? Math.min(probeTimeout, connectTimeout) : connectTimeout
      const target = connectionUrl(url, positions.cursor(), polling, since(), quick)
      connection = json ? fetchPoll(target) : openFrame(target)
      watch()
    }

    function openFrame (target) {
      const frame = document.createElement('iframe')
      frame.hidden = true
      frame.tabIndex = -1
      frame.title = 'comet stream'
      frame.setAttribute('aria-hidden', 'true')
      // 'load' fires once the comet document is complete, that is when the stream has ended (or
      // an error page loaded instead); browsers seldom fire 'error' on frames, but it means the same.
      const ended = function (event) {
        if (frame === connection && !isBlank(frame)) disconnect(event.type === 'error' ? 'error' : 'ended')
      }
      frame.addEventListener('load', ended)
      frame.addEventListener('error', ended)
      frame.src = target
      ;(document.body || document.documentElement).appendChild(frame)
      return frame
    }

    // A JSON poll: fetch() reads the route's answer whole, and its entries run as the comet
    // document's helper runs a script's. Its end says "poll again at once" unless it says otherwise.
    function fetchPoll (target) {
      const request = new AbortController()
      fetch(target, { signal: request.signal, cache: 'no-store', headers: JSON_POLL_HEADERS }).then(function (response) {
        // Answered, if only with an error (maxStreams): polls get through, whatever follows.
        if (connection === request) confirming = false
        if (!response.ok) throw new Error('the poll was answered with status ' + response.status)
        // A document: a hop dropped the header. The next polls are documents in frames.
        if (!/json/.test(response.headers.get('content-type') || '')) jsonPolls = false
        return response.json()
      }).then(function (entries) {
        if (connection !== request) return
        if (!Array.isArray(entries)) throw new TypeError('the poll was answered with no entries')
        runEntries(entries)
        if (connection !== request) return // a handler closed the stream
        heard()
        if (reconnect === undefined) reconnect = 'now'
        disconnect('ended')
      }).catch(function () {
        if (connection === request) disconnect('error')
      })
      return request
    }

    // A JSON poll's entries (the README's wire format): 0,MESSAGE  1,MESSAGE,ID  2,TYPE,DETAIL
    // and 3,KEY, which gives the message entries after it their key.
    function runEntries (entries) {
      let key
      for (let i = 0; i < entries.length;) {
        const kind = entries[i]
        if (kind === 0) receive(entries[i + 1], undefined, key)
        else if (kind === 1) receive(entries[i + 1], entries[i + 2], key)
        else if (kind === 3) key = entries[i + 1]
        else receive.cometControl(entries[i + 1], entries[i + 2])
        i += kind === 0 || kind === 3 ? 2 : 3
      }
    }

    function disconnect (reason) {
      // Removing the frame, or aborting the fetch, ends the request (a connection given up by the watchdog).
      stopConnection()
      const ended = polling ? 'poll' : 'stream'
      let rotated = reconnect === 'now' && reason === 'ended'
      // Polls do not get through either: no buffering hop, a server that does not answer.
      if (confirming && !(rotated && polling)) transport = 'stream'
      confirming = false
      if (rotated && polling) {
        // A poll that ended as polls do with nothing (not the quick one, which may end before a
        // replay) says the server is idle, as a heartbeat does: a tab catching up is there.
        if (catching !== undefined && !quick && messages === openedWith) {
          caughtUpWhenIdle()
          if (catching === undefined && role !== LEADER) return
        }
        // The next poll goes on from this one at once, unless a stream is due.
        if (mode !== 'auto' || performance.now() < retryAt) {
          polled = true
          timer = setTimeout(open, 0)
          return
        }
        transport = 'stream'
        reason = 'upgrade'
      } else if (reason === 'buffered') {
        transport = 'poll'
        confirming = true
        retryAt = performance.now() + retryDelay
        retryDelay = Math.min(MAX_STREAM_RETRY_MS, 2 * retryDelay)
        rotated = true
      }
      if (rotated || Date.now() - openedAt >= HEALTHY_MS) attempt = 0
      // Capped exponential backoff with full jitter: clients cut off together (a restarted
      // server) come back spread out, and a server that keeps failing is asked less and less often.
      const delay = rotated ? 0 : Math.floor(Math.random() * Math.min(maxDelay, minDelay * Math.pow(2, attempt)))
      const info = { reason: rotated && reason === 'ended' ? 'rotated' : reason, messages, attempt, delay, transport: ended }
      if (!rotated) attempt++
      timer = setTimeout(open, delay)
      if (role === LEADER) send(['x', info])
      else if (onClose !== undefined) safely(onClose, info)
    }

    // The window of ?since=, in milliseconds, for what the cursor has no position for; undefined
    // before any connection (a page starts live), or when a single source's position says it all.
    function since () {
      if (heardUntil === undefined) return undefined
      if (positions.cursor() !== undefined && positions.keys()[0] === undefined) return undefined
      return Math.ceil(performance.now() - heardUntil) + SINCE_MARGIN_MS
    }

    // The page has what was published until the last entry it heard; a connection that
    // delivered nothing moves that point only if there was none (its own start), and a quick poll
    // none (it ended at once, maybe before a replay).
    function noteHeard () {
      if ((!connecting && !quick) || heardUntil === undefined) heardUntil = heardAt
    }

    // Ends this tab's connection, if any, with no onClose and no reconnect: another tab's carries on.
    function stopConnection () {
      if (connection !== undefined) noteHeard()
      polled = false
      clearTimeout(timer)
      timer = undefined
      clearTimeout(watchdog)
      watchdog = undefined
      const current = connection
      connection = undefined
      if (current === undefined) return
      if (typeof current.abort === 'function') current.abort()
      else if (current.parentNode) current.parentNode.removeChild(current)
    }

    // ---- Sharing: the election -------------------------------------------------------------

    function join () {
      catching = undefined
      target = undefined
      // A cursor of its own (the page's, or from before the back/forward cache): caught up unless
      // this tab leads.
      if (positions.cursor() !== undefined) {
        catching = new Map()
        for (const key of positions.keys()) catching.set(key, [])
      }
      try {
        link = new BroadcastChannel(name)
      } catch (err) {
        // A document with an opaque origin (a sandboxed frame) may have none: a connection of its own.
        catching = undefined
        return open()
      }
      link.onmessage = hear
      if (locks === undefined) return claim()
      const request = lockRequest = new AbortController()
      const hold = function (lock) {
        if (request !== lockRequest || lock === null) return
        return new Promise(function (resolve) {
          release = resolve
          lead()
        })
      }
      // A lock held by another tab: follow it, and wait in line.
      locks.request(name, { ifAvailable: true }, function (lock) {
        if (lock !== null || request !== lockRequest) return hold(lock)
        follow()
        locks.request(name, { signal: request.signal }, hold).catch(noop)
      }).catch(function () {
        // Refused (a document whose origin cannot use locks): the election without them.
        if (request !== lockRequest) return
        locks = undefined
        lockRequest = undefined
        claim()
      })
    }

    // This tab stops taking part: a leader hands over at once.
    function leave () {
      clearTimeout(ticker)
      ticker = undefined
      clearTimeout(asking)
      asking = undefined
      if (role === LEADER) {
        flush()
        post('bye')
      }
      role = undefined
      catching = undefined
      outbox = []
      if (release !== undefined) release()
      release = undefined
      if (lockRequest !== undefined) lockRequest.abort()
      lockRequest = undefined
      if (link !== undefined) link.close()
      link = undefined
    }

    function lead () {
      if (closed || suspended) return
      role = LEADER
      // A forced transport is this tab's own, whatever the last leader's was.
      if (mode !== 'auto') transport = mode
      // Its own connection starts from its own cursor: whatever was kept aside comes again.
      catching = undefined
      clearTimeout(asking)
      asking = undefined
      clearTimeout(ticker)
      ticker = undefined
      if (locks === undefined) beat()
      if (connection === undefined && timer === undefined) {
        attempt = 0
        open()
      }
    }

    function follow () {
      const resigned = role === LEADER
      role = FOLLOWER
      if (heardUntil === undefined) heardUntil = performance.now()
      if (resigned) {
        flush()
        stopConnection()
      }
      if (catching !== undefined && connection === undefined && timer === undefined && asking === undefined) {
        // Where is the shared stream? Most often where this tab's cursor is (rendered just now):
        // then there is nothing to catch up on, and no connection to open.
        post('where')
        asking = setTimeout(function () {
          asking = undefined
          if (catching !== undefined && role !== LEADER && connection === undefined && timer === undefined) open()
        }, ASK_MS)
      }
      if (locks === undefined) wait(LEADER_LOST_MS, claim)
    }

    // The leader's answer: the shared messages after it come after `at`, those kept before it
    // are not newer (caught up on this tab's connection, or older than its cursor).
    function answered (at) {
      clearTimeout(asking)
      asking = undefined
      target = at
      const keys = []
      catching.forEach(function (kept, key) {
        kept.length = 0
        keys.push(key)
      })
      for (let i = 0; i < keys.length && catching !== undefined; i++) {
        const id = targetOf(keys[i])
        if (id !== undefined && positions.seen(id, keys[i])) caughtUp(keys[i], [])
      }
      if (catching !== undefined && connection === undefined && timer === undefined) open()
    }

    function targetOf (key) {
      if (typeof target === 'string') return key === undefined ? target : undefined
      return isObject(target) && key !== undefined && typeof target[key] === 'string' ? target[key] : undefined
    }

    // Without Web Locks: asks for the lead, which it takes unless a leader or a smaller claim answers.
    function claim () {
      role = CANDIDATE
      post('claim')
      wait(CLAIM_MS, lead)
    }

    function beat () {
      post('here')
      wait(BEAT_MS, beat)
    }

    function wait (delay, then) {
      clearTimeout(ticker)
      ticker = setTimeout(then, delay)
    }

    function hear (event) {
      const data = event.data
      if (closed || suspended || !isObject(data)) return
      if (data.t === 'ev' || data.t === 'here') {
        if (role === LEADER) {
          // Two leaders (claims that crossed): the larger number steps down.
          if (locks === undefined && data.tab < tab) follow()
          else if (locks === undefined) post('here')
          if (role === LEADER) return
        } else if (locks === undefined) {
          if (role === CANDIDATE) follow()
          else wait(LEADER_LOST_MS, claim)
        }
        // Asked before there was a leader to answer (claims that crossed): ask this one.
        if (data.t === 'here' && asking !== undefined && connection === undefined) post('where')
        if (data.t === 'ev') {
          // The leader's transport is this tab's too, and will be if it takes over: same network.
          if (data.transport !== transport && TRANSPORTS.indexOf(data.transport) > 0) {
            transport = data.transport
            retryAt = performance.now() + retryDelay
          }
          run(data.events)
          // What the page has, should this tab take over with no position for some of it.
          heardUntil = performance.now()
        }
      } else if (data.t === 'where' && role === LEADER) {
        flush()
        link.postMessage({ t: 'at', tab, cursor: positions.value() })
      } else if (data.t === 'at' && role !== LEADER && catching !== undefined) {
        answered(data.cursor)
      } else if (data.t === 'claim') {
        if (role === LEADER) post('here')
        else if (role === CANDIDATE && data.tab < tab) follow()
      } else if (data.t === 'bye' && locks === undefined && role !== LEADER) {
        claim()
      }
    }

    function post (type) {
      if (link !== undefined) link.postMessage({ t: type, tab })
    }

    // The leader's events, posted together once the comet script that brought them has run.
    function send (event) {
      if (outbox.length === 0) Promise.resolve().then(flush)
      outbox.push(event)
    }

    function flush () {
      if (outbox.length === 0) return
      const events = outbox
      outbox = []
      // Posted even with no follower known: one may have joined before this tab could hear it.
      if (link !== undefined) link.postMessage({ t: 'ev', tab, events, transport })
      run(events)
      if (connection !== undefined) heard() // after the handlers, as for a tab alone
    }

    // The leader's events in this tab: the leader's own, or a follower's, which runs them as the
    // comet document's helper would, through the page's global, looked up each time.
    function run (events) {
      const follower = role !== LEADER
      for (let i = 0; i < events.length; i++) {
        if (closed || (follower && (suspended || role === LEADER))) return
        const event = events[i]
        const kind = event[0]
        if (kind === 'm' && !follower) {
          deliver(event[1], event[2], event[3])
        } else if (kind === 'c' && !follower) {
          control(event[1], event[2])
        } else if (kind === 'm' || kind === 'c') {
          const handler = window[callback]
          if (typeof handler !== 'function') continue
          relaying = true
          try {
            if (kind === 'm') handler(event[1], event[2], event[3])
            else if (typeof handler.cometControl === 'function') handler.cometControl(event[1], event[2])
          } catch (err) {
            report(err)
          } finally {
            relaying = false
          }
        } else if (catching !== undefined) {
          // onOpen and onClose come from this tab's own connection while it catches up.
        } else if (kind === 'o') {
          if (onOpen !== undefined) safely(onOpen)
        } else if (kind === 'x') {
          sharedMessages = 0
          if (onClose !== undefined) safely(onClose, event[1])
        }
      }
    }

    // A message of the shared stream.
    function relayed (message, id, key) {
      if (closed) return
      sharedMessages++
      const kept = catching === undefined || typeof id !== 'string' ? undefined : catching.get(key)
      if (kept === undefined) return deliver(message, id, key)
      // Delivered by this tab's own connection already: the shared stream is caught up with, and
      // what it brought before is either delivered or older than the cursor.
      if (positions.seen(id, key)) caughtUp(key, [])
      else kept.push([message, id])
    }

    // A message of this tab's own connection while it catches up.
    function caughtUpTo (message, id, key) {
      const kept = typeof id === 'string' ? catching.get(key) : undefined
      if (kept === undefined) return // live on the shared stream, which brings it
      deliver(message, id, key)
      // Where the leader said the shared stream was: what it kept since comes after.
      if (id === targetOf(key)) return caughtUp(key, kept)
      for (let i = 0; i < kept.length; i++) {
        if (kept[i][1] === id) return caughtUp(key, kept.slice(i + 1))
      }
    }

    // A heartbeat: the server had nothing to write, so the replay is over. A key with no shared
    // message kept aside has nothing more to catch up.
    function caughtUpWhenIdle () {
      const done = []
      catching.forEach(function (kept, key) { if (kept.length === 0) done.push(key) })
      for (let i = 0; i < done.length && catching !== undefined; i++) caughtUp(done[i], [])
    }

    function caughtUp (key, rest) {
      catching.delete(key)
      for (let i = 0; i < rest.length; i++) deliver(rest[i][0], rest[i][1], key)
      if (catching.size !== 0) return
      catching = undefined
      clearTimeout(asking)
      asking = undefined
      if (role !== LEADER) stopConnection()
    }

    // ---- The page's life ---------------------------------------------------------------

    function start () {
      started = true
      if (!sharing) return open()
      join()
    }

    function whenLoaded () {
      window.removeEventListener('load', whenLoaded)
      if (!closed && !started) start()
    }

    // Into the back/forward cache, frozen, or unloaded: the connection goes (a leader hands over).
    function suspend () {
      if (closed || suspended || !started) return
      suspended = true
      stopConnection()
      leave()
    }

    // Back from the cache or thawed: at once, from the cursor it had.
    function resume (event) {
      if (closed || !suspended || (event.type === 'pageshow' && !event.persisted)) return
      suspended = false
      attempt = 0
      start()
    }

    // A forever iframe started before the page's 'load' would keep the page loading for good.
    if (sharing) name = 'fastify-comet ' + callback + ' ' + new URL(url, document.baseURI).href.split('#')[0]
    window.addEventListener('pagehide', suspend)
    window.addEventListener('freeze', suspend)
    window.addEventListener('pageshow', resume)
    window.addEventListener('resume', resume)
    if (document.readyState === 'complete') start()
    else window.addEventListener('load', whenLoaded)

    return {
      /** Ends the stream in this tab: no reconnect, no more messages; the frame and the global go. */
      close: function () {
        if (closed) return
        const connected = connection !== undefined || polled || role === FOLLOWER
        const count = connection !== undefined || polled ? messages : sharedMessages
        closed = true
        window.removeEventListener('load', whenLoaded)
        window.removeEventListener('pagehide', suspend)
        window.removeEventListener('freeze', suspend)
        window.removeEventListener('pageshow', resume)
        window.removeEventListener('resume', resume)
        stopConnection()
        leave()
        if (window[callback] === receive) {
          try { delete window[callback] } catch (err) { window[callback] = noop }
        }
        if (connected && onClose !== undefined) {
          safely(onClose, { reason: 'closed', messages: count, attempt, delay: undefined, transport })
        }
      },
      /** The cursor sent as ?lastEventId= on every reconnect: the last id, or { key: id }. */
      get lastEventId () { return positions.value() },
      /** How this tab's messages arrive now: 'stream', or 'poll' where a hop holds streams back. */
      get transport () { return transport },
      get closed () { return closed }
    }
  }

  // What the page has received: one id (a single-source stream) or one per key, and, in a shared
  // tab, the last ids of each key, to drop repeats (ids are opaque: they have no order).
  function cursor (initial, dedupe) {
    let multiplexed = initial !== undefined && typeof initial !== 'string'
    let single = multiplexed ? undefined : initial
    const ids = Object.create(null)
    if (multiplexed) Object.keys(initial).forEach(function (key) { ids[key] = initial[key] })
    // The ids of the position count as seen: the message at a page's cursor is in the page already.
    const seen = new Map()
    function isSeen (id, key) {
      const ids = seen.get(key)
      return ids !== undefined && ids.has(id)
    }
    function remember (key, id) {
      let ids = seen.get(key)
      if (ids === undefined) seen.set(key, ids = new Set())
      ids.add(id)
      if (ids.size > SEEN_IDS) ids.delete(ids.values().next().value)
    }
    if (dedupe && multiplexed) Object.keys(ids).forEach(function (key) { remember(key, ids[key]) })
    else if (dedupe && single !== undefined) remember(undefined, single)
    function multiplex () {
      multiplexed = true
      single = undefined
    }
    function set (key, id) {
      if (dedupe && id !== undefined) remember(key, id)
      if (!multiplexed) single = id
      else if (key !== undefined && id === undefined) delete ids[key]
      else if (key !== undefined) ids[key] = id
    }
    return {
      multiplex,
      /** The keys of the cursor (one, undefined, for a single-source stream). */
      keys () { return multiplexed ? Object.keys(ids) : [undefined] },
      seen: isSeen,
      /** Records a message's id; false if this shared tab has had it already. */
      accept (id, key) {
        if (key !== undefined && !multiplexed) multiplex()
        if (typeof id !== 'string') return true
        if (dedupe && isSeen(id, key)) return false
        set(key, id)
        return true
      },
      reset (key, id) {
        if (key !== undefined && !multiplexed) multiplex()
        set(key, id)
      },
      /** The text sent as ?lastEventId=, undefined without a position. */
      cursor () {
        if (!multiplexed) return single
        return Object.keys(ids).length === 0 ? undefined : JSON.stringify(ids)
      },
      value () { return multiplexed ? JSON.parse(JSON.stringify(ids)) : single }
    }
  }

  function cursorOption (value) {
    if (value === undefined || typeof value === 'string') return value
    if (isObject(value) && !Array.isArray(value)) {
      const keys = Object.keys(value)
      if (keys.every(function (key) { return KEY.test(key) && typeof value[key] === 'string' })) return value
    }
    throw new TypeError('FastifyComet.connect: lastEventId must be a string, or an object of key -> id strings')
  }

  // The URL of a frame's document; undefined when out of reach (another origin) or not there.
  function documentUrl (frame) {
    try {
      const doc = frame.contentDocument
      return doc === null ? undefined : doc.URL
    } catch (err) {
      return undefined
    }
  }

  // A same-origin frame whose document is no longer its initial about:blank got a response.
  function hasBegun (frame) {
    const url = documentUrl(frame)
    return url !== undefined && url !== 'about:blank'
  }

  // A frame fires 'load' for its initial about:blank in some browsers: that is not the stream.
  function isBlank (frame) {
    return documentUrl(frame) === 'about:blank'
  }

  // The URL of one connection: a poll or a stream, from a cursor, and ?since= (see the header).
  function connectionUrl (url, id, poll, since, quick) {
    const query = (poll ? '&transport=poll' : '') + (quick ? '&wait=0' : '') +
      (id === undefined ? '' : '&lastEventId=' + encodeURIComponent(id)) +
      (since === undefined ? '' : '&since=' + since)
    if (query === '') return url
    const hash = url.indexOf('#')
    const base = hash === -1 ? url : url.slice(0, hash)
    const last = base.charAt(base.length - 1)
    const separator = base.indexOf('?') === -1 ? '?' : (last === '?' || last === '&' ? '' : '&')
    return base + separator + query.slice(1)
  }

  // The application's handlers must not break the stream: their errors are reported, not thrown
  // into the comet document's script.
  function safely (fn, a, b, c) {
    try {
      fn(a, b, c)
    } catch (err) {
      report(err)
    }
  }

  function report (err) {
    if (typeof window.reportError === 'function') window.reportError(err)
    else setTimeout(function () { throw err })
  }

  function isObject (value) {
    return value !== null && typeof value === 'object'
  }

  function optionalFunction (options, name) {
    const value = options[name]
    if (value !== undefined && typeof value !== 'function') throw new TypeError('FastifyComet.connect: ' + name + ' must be a function')
    return value
  }

  function delayOption (options, name, fallback) {
    const value = options[name] === undefined ? fallback : options[name]
    // 0 would reconnect in a hot loop to a server that keeps failing.
    if (!isDelay(value)) {
      throw new RangeError('FastifyComet.connect: ' + name + ' must be a number of milliseconds, more than 0')
    }
    return value
  }

  function isDelay (value) {
    return typeof value === 'number' && value > 0 && isFinite(value)
  }

  function noop () {}

  return { connect }
})
