// A server in a child process, run the way users run it: plain Node on the built package (dist/),
// without tap's hooks or coverage. Fastify's JSON log lines on its stdout are how a test follows
// it: it listens, it lost Redis, it is connected again, it served a request.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { resolve } from 'node:path'
import { createInterface } from 'node:readline'
import type { Test } from 'tap'
import type { LogLine } from './helpers.js'

const EXIT_WITH_PARENT = resolve(__dirname, 'fixtures/exit-with-parent.js')

export interface ChildServer {
  /** Where it listens: http://127.0.0.1:PORT. */
  origin: string
  /** Every line it logged so far, parsed. */
  logs: LogLine[]
  /** Resolves with the first line (already logged or still to come) that matches. */
  logged: (matches: (line: LogLine) => boolean) => Promise<LogLine>
  /** Sends `signal` (SIGKILL: a crash) and resolves once the process has exited. */
  kill: (signal?: NodeJS.Signals) => Promise<void>
}

/** Variables to set, or (undefined) to leave out, in a child's environment. */
export type EnvChanges = Record<string, string | undefined>

/** The environment of a child that runs dist/: tap's loader and coverage are not passed on. */
export function childEnv (changes: EnvChanges = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...changes, NODE_OPTIONS: undefined, NODE_V8_COVERAGE: undefined }
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete env[name]
  return env
}

/** Runs `node script` with `env` changed, until `t` ends; resolves once it listens. */
export async function startServer (t: Test, script: string, env: EnvChanges = {}): Promise<ChildServer> {
  // With an IPC channel that only tells the child when this process is gone (EXIT_WITH_PARENT).
  const child = spawn(process.execPath, ['-r', EXIT_WITH_PARENT, script], { env: childEnv(env), stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  child.channel?.unref()
  const exited = once(child, 'exit')
  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await exited
  }
  t.teardown(() => kill())

  const logs: LogLine[] = []
  const waiters = new Set<(line: LogLine) => void>()
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', text => {
    let line: LogLine
    try {
      line = JSON.parse(text)
    } catch {
      line = { level: 0, msg: text } // not from the logger: kept as it is
    }
    logs.push(line)
    for (const waiter of waiters) waiter(line)
  })
  const logged = (matches: (line: LogLine) => boolean): Promise<LogLine> => new Promise(resolve => {
    const found = logs.find(matches)
    if (found !== undefined) return resolve(found)
    const waiter = (line: LogLine): void => {
      if (!matches(line)) return
      waiters.delete(waiter)
      resolve(line)
    }
    waiters.add(waiter)
  })

  const LISTENING = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/
  const listening = logged(line => LISTENING.test(line.msg))
  const failed = exited.then(([code, signal]) => { throw new Error(`${script} exited (${code ?? signal}) before it listened`) })
  const line = await Promise.race([listening, failed]) // (race handles a later exit's rejection)
  return { origin: (LISTENING.exec(line.msg) as RegExpExecArray)[1], logs, logged, kill }
}
