// Behind nginx with its default proxy_buffering on, messages still arrive one by one: the
// response's X-Accel-Buffering: no turns buffering off for it. Runs Debian's nginx as a reverse
// proxy on a free loopback port, configured in a temporary directory.
//
// With `proxy_http_version 1.1` nginx reads the chunked upstream body chunk by chunk and passes on
// each whole chunk even while buffering; with nginx's default `proxy_http_version 1.0` the body
// has no framing and a buffering nginx holds it until a buffer fills. That second case is the one
// where X-Accel-Buffering decides (checked: with `proxy_ignore_headers X-Accel-Buffering` it
// deadlocks), so both are tested.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { build, listen, open, messages, loneMessageSource } from './helpers.js'

const NGINX = '/usr/sbin/nginx'

async function freePort (): Promise<number> {
  const server = net.createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as net.AddressInfo
  server.close()
  await once(server, 'close')
  return port
}

/** Resolves once something accepts connections on `port`; rejects if nginx exits first. */
async function accepting (port: number, exited: Promise<unknown>): Promise<void> {
  let gone = false
  exited.then(() => { gone = true }, () => { gone = true })
  for (;;) {
    if (gone) throw new Error('nginx exited before it listened')
    const socket = net.connect(port, '127.0.0.1')
    try {
      await once(socket, 'connect')
      socket.destroy()
      return
    } catch {
      socket.destroy()
      await sleep(20) // a retry interval while nginx starts, not a timing assumption of the test
    }
  }
}

/** Starts nginx in front of `upstream`; returns its URL and stops it at teardown. */
async function startNginx (t: Test, upstream: string, httpVersion: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-comet-nginx-'))
  const port = await freePort()
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass ${upstream};
      proxy_http_version ${httpVersion};
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
`)
  const nginx = spawn(NGINX, ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  nginx.stderr.on('data', chunk => { stderr += chunk })
  const exited = once(nginx, 'exit')
  t.teardown(async () => {
    if (nginx.exitCode === null) {
      nginx.kill('SIGTERM')
      await exited
    }
    rmSync(dir, { recursive: true, force: true })
  })
  try {
    await accepting(port, exited)
  } catch (err) {
    const log = existsSync(join(dir, 'error.log')) ? readFileSync(join(dir, 'error.log'), 'utf8') : ''
    throw new Error(`${(err as Error).message}: ${stderr}${log}`)
  }
  return `http://127.0.0.1:${port}`
}

const MISSING = `${NGINX} not found: apt-get install -y nginx-light to run the nginx tests`

if (!existsSync(NGINX)) {
  // Skipped on a developer's machine without nginx; in CI a missing nginx is a failure.
  if (process.env.CI === undefined) t.plan(0, MISSING)
  else t.fail(MISSING)
} else {
  for (const httpVersion of ['1.1', '1.0']) {
    t.test(`through nginx (proxy_http_version ${httpVersion}, proxy_buffering on), a lone message arrives before the next is produced`, { timeout: 10000 }, async t => {
      const { app } = await build(t, { padding: 0 })
      const lone = loneMessageSource() // deadlocks if nginx held a message back in its buffers
      app.get('/comet', (request, reply) => reply.comet(lone.source(), 'cb'))
      const proxy = await startNginx(t, await listen(app), httpVersion)
      const stream = await open(`${proxy}/comet`)
      await stream.waitFor('0,"first",')
      t.notOk(stream.body().includes('second'), 'the second message was not produced yet')
      lone.release()
      await stream.ended
      t.same(messages(stream.body(), 'cb'), ['first', 'second'], 'the body ends cleanly through the proxy')
      t.equal(stream.res.headers['content-type'], 'text/html; charset=utf-8')
    })
  }
}
