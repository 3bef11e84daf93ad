'use strict'
/* global FastifyComet */
// The page's own script: shows the clock and the chat, and posts what is typed.
;(function () {
  const clock = document.getElementById('clock')
  const log = document.getElementById('chat-log')
  const form = document.getElementById('chat-form')
  const status = document.getElementById('chat-status')

  // FastifyComet (from /comet/client.js) defines window.clockTick and window.chatMessage, which the comet
  // scripts call as parent.clockTick(time) and parent.chatMessage(message); it inserts the hidden iframes
  // after the page's load event and reconnects when a stream rotates, fails or the server restarts.
  FastifyComet.connect('/clock', {
    callback: 'clockTick',
    onMessage: function (time) { clock.textContent = time }
  })

  // textContent only: a message is text, never markup.
  FastifyComet.connect('/chat', {
    callback: 'chatMessage',
    onMessage: function (message) {
      const item = document.createElement('li')
      const time = document.createElement('time')
      time.dateTime = message.time
      time.textContent = new Date(message.time).toLocaleTimeString()
      item.append(time, document.createTextNode(message.text))
      log.append(item)
      log.scrollTop = log.scrollHeight
    },
    // The lines this page missed are no longer in the channel's history: start the log afresh.
    onReset: function () { log.replaceChildren() }
  })

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
