#!/usr/bin/env node
// Builds the console page into dist/console/ (run by `npm run build` as its
// `console` step, or on its own): the TypeScript under src/ bundled by
// esbuild into one ES module, the stylesheet, the icon, and index.html with
// a content hash on every asset URL. No CDN, no remote font: the built page
// works offline. `--no-typecheck` skips tsc on the page's sources.
import { createHash } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..', '..')
const out = join(root, 'dist', 'console')
const assets = join(out, 'assets')
const t0 = Date.now()

if (!process.argv.includes('--no-typecheck')) {
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  const r = spawnSync(process.execPath, [tsc, '-p', join(here, 'tsconfig.json')], { stdio: 'inherit' })
  if (r.status !== 0) {
    console.error('console page: type errors (above); fix them, or build with --no-typecheck')
    process.exit(1)
  }
}

rmSync(out, { recursive: true, force: true })
mkdirSync(assets, { recursive: true })

const common = { bundle: true, minify: true, legalComments: 'none', logLevel: 'warning', absWorkingDir: here }
await build({
  ...common,
  entryPoints: [join(here, 'src', 'main.ts')],
  outfile: join(assets, 'app.js'),
  format: 'esm',
  platform: 'browser',
  target: ['chrome110', 'firefox115', 'safari16'],
  sourcemap: 'linked',
  sourcesContent: true,
})
await build({ ...common, entryPoints: [join(here, 'styles.css')], outfile: join(assets, 'app.css'), target: ['chrome110', 'firefox115', 'safari16'] })
copyFileSync(join(here, 'favicon.svg'), join(assets, 'favicon.svg'))

const hash = createHash('sha256')
for (const f of ['app.js', 'app.css', 'favicon.svg']) hash.update(readFileSync(join(assets, f)))
const v = hash.digest('hex').slice(0, 12)
// {{q}} stays: the server puts the access token there when the page was opened with one
writeFileSync(join(out, 'index.html'), readFileSync(join(here, 'index.html'), 'utf8').replaceAll('{{v}}', v))

const size = (f) => `${(readFileSync(join(assets, f)).length / 1024).toFixed(1)} KiB`
console.error(`console page: ${relative(root, out)}/ (app.js ${size('app.js')}, app.css ${size('app.css')}, version ${v}) in ${Date.now() - t0} ms`)
