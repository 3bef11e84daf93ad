'use strict'
// The page's only script. The hidden iframes load /clock and /chat, whose comet scripts call
// parent.clock(time) and parent.chat(message), defined here.
;(function () {
  const clock = document.getElementById('clock')
  const log = document.getElementById('chat-log')
  const form = document.getElementById('chat-form')
  const status = document.getElementById('chat-status')

  window.clock = function (time) {
    clock.textContent = time
  }

  // textContent only: a message is text, never markup.
  window.chat = function (message) {
    const item = document.createElement('li')
    const time = document.createElement('time')
    time.dateTime = message.time
    time.textContent = new Date(message.time).toLocaleTimeString()
    item.append(time, document.createTextNode(message.text))
    log.append(item)
    log.scrollTop = log.scrollHeight
  }

  // After load: a page with a forever iframe in its markup would never finish loading.
  window.addEventListener('load', function () {
    for (const src of ['/clock', '/chat']) {
      const frame = document.createElement('iframe')
      frame.hidden = true
      frame.src = src
      document.body.append(frame)
    }
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
