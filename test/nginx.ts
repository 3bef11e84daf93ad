// Debian's nginx for the proxy tests, run per test as a reverse proxy on a free loopback port and
// configured in a temporary directory (`daemon off`, every path under it: no root-owned defaults).
// Without nginx a file skips itself with one line saying how to get it; on CI that is a failure.
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { once } from 'node:events'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { missing } from './helpers.js'

export const NGINX_PATH = '/usr/sbin/nginx'

/** True when nginx is missing: the file is then skipped (failed on CI) and must define no tests. */
export function withoutNginx (t: Test): boolean {
  return missing(t, NGINX_PATH, `${NGINX_PATH} not found: apt-get install -y nginx-light to run the nginx tests`)
}

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

/**
 * A `location /` that passes everything to `upstream` and buffers what comes back whatever the app
 * asks, as a proxy or CDN that ignores X-Accel-Buffering does: buffers that hold a stream's first
 * minutes (16 MiB), and HTTP/1.0 upstream (nginx's default), under which the body has no chunks
 * for nginx to pass on one by one. A forever document is held back; a poll passes once it ends.
 */
export function bufferingLocation (upstream: string): string {
  return `
    location / {
      proxy_pass ${upstream};
      proxy_http_version 1.0;
      proxy_buffering on;
      proxy_ignore_headers X-Accel-Buffering;
      proxy_buffer_size 256k;
      proxy_buffers 64 256k;
    }`
}

/**
 * Starts nginx with one server whose body is `server` (its `location` blocks), and `http` (e.g.
 * `upstream` blocks) beside it; returns the server's URL and stops nginx at teardown.
 */
export async function startNginx (t: Test, { server, http = '' }: { server: string, http?: string }): Promise<string> {
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
${http}
  server {
    listen 127.0.0.1:${port};
${server}
  }
}
`)
  const nginx = spawn(NGINX_PATH, ['-c', conf, '-p', dir, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'pipe'] })
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
