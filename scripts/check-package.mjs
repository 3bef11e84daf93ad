// npm run check:package: is the package as npm would publish it sound for every consumer?
// Packs the built tree with npm (without lifecycle scripts: run `npm run build` first), then
//  - source maps: any .map in the tarball must only point at files the tarball has;
//  - attw (@arethetypeswrong/cli): every entry point resolves, with matching types, under node10,
//    node16 from CommonJS and from ESM, and bundler resolution;
//  - publint (which packs with npm itself, to tell unpublished files from missing ones): any
//    message fails the check, but one, waived below after checking that it is harmless.
// Offline: nothing is fetched.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'

const root = fileURLToPath(new URL('..', import.meta.url))
const require = createRequire(import.meta.url)
let failed = false

if (!existsSync(join(root, 'dist', 'index.js'))) {
  console.error('check:package: dist/ is missing; run `npm run build` first')
  process.exit(1)
}

const dir = mkdtempSync(join(tmpdir(), 'fastify-comet-pack-'))
try {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const [packed] = JSON.parse(execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], shell: process.platform === 'win32'
  }))
  const tarball = join(dir, packed.filename)
  const files = new Set(packed.files.map(file => file.path))

  for (const map of [...files].filter(path => path.endsWith('.map'))) {
    const { sources = [], sourceRoot = '' } = JSON.parse(readFileSync(join(root, map), 'utf8'))
    for (const source of sources) {
      const target = posix.normalize(posix.join(posix.dirname(map), sourceRoot, source))
      if (!files.has(target)) {
        console.error(`source map ${map} points at ${target}, which the package does not ship`)
        failed = true
      }
    }
  }

  const attw = join(dirname(require.resolve('@arethetypeswrong/cli/package.json')), 'dist', 'index.js')
  const result = spawnSync(process.execPath, [attw, tarball, '--no-definitely-typed', '--format', 'table'], { stdio: 'inherit' })
  if (result.status !== 0) failed = true

  const { messages, pkg } = await publint({ pkgDir: root, pack: 'npm', level: 'suggestion' })
  for (const message of messages) {
    if (waived(message)) {
      console.log(`publint (waived, see scripts/check-package.mjs): ${formatMessage(message, pkg)}`)
    } else {
      console.error(`publint ${message.type}: ${formatMessage(message, pkg)}`)
      failed = true
    }
  }
  if (messages.length === 0) console.log('publint: no messages')
} finally {
  rmSync(dir, { recursive: true, force: true })
}

process.exitCode = failed ? 1 : 0

// publint reads dist/index.js as text and finds tsc's `exports.__esModule = true` marker (emitted
// for `export { fastifyComet as default }` in lib/index.ts) next to `exports.default`: bundlers that
// honour the marker give `exports.default` to a default import, Node gives `module.exports`. Here
// lib/index.ts then replaces module.exports with the plugin itself, so the marker never reaches a
// consumer, and `.default` is the plugin too: every reading gives the same function. The waiver
// holds only while that is true of the built file.
function waived (message) {
  if (message.code !== 'CJS_WITH_ESMODULE_DEFAULT_EXPORT' || message.args.filePath !== '/dist/index.js') return false
  const exported = require('../dist/index.js')
  return typeof exported === 'function' && !('__esModule' in exported) && exported.default === exported
}
