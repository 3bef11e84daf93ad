'use strict'
/* global FastifyComet */
// The page's own script: shows the clock and the chat, and posts what is typed.
;(function () {
  const clock = document.getElementById('clock')
  const log = document.getElementById('chat-log')
  const form = document.getElementById('chat-form')
  const status = document.getElementById('chat-status')

  // One stream, /live, carries the clock and the chat (a multiplexed stream: each message comes with
  // its key). FastifyComet (from /comet/client.js) defines window.live, which the comet scripts call
  // as parent.live(message, id, key); it inserts the hidden iframe after the page's load event,
  // reconnects when the stream rotates, fails or the server restarts, and shares the one connection
  // with every other tab of this page. The server rendered the chat's last lines and the cursor
  // after them: the stream starts there, so no line published since the render is lost.
  FastifyComet.connect('/live', {
    callback: 'live',
    lastEventId: { chat: log.dataset.cursor },
    onMessage: function (message, id, key) {
      if (key === 'clock') clock.textContent = message
      else addLine(message)
    },
    // The lines this page missed are no longer in the channel's history: start the log afresh.
    onReset: function (info) { if (info.key === 'chat') log.replaceChildren() }
  })

  // textContent only: a message is text, never markup.
  function addLine (message) {
    const item = document.createElement('li')
    const time = document.createElement('time')
    time.dateTime = message.time
    time.textContent = message.time.slice(11, 19)
    item.append(time, document.createTextNode(message.text))
    log.append(item)
    log.scrollTop = log.scrollHeight
  }

  form.addEventListener('submit', async function (event) {
    event.preventDefault()
    status.textContent = ''
    try {
      const response = await fetch('/chat', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ text: form.elements.text.value })
      })
      if (!response.ok) throw new Error((await response.json()).message)
      form.reset()
    } catch (err) {
      status.textContent = 'Not sent: ' + err.message
    }
  })
})()
