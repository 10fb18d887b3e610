#!/usr/bin/env node
// npm run build: BPF objects (clang -target bpf), the N-API addon (node-gyp),
// the TypeScript (tsc) and the console page (esbuild). Each step is
// incremental; `--only bpf,addon,ts,console` picks steps.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const only = process.argv.find(a => a.startsWith('--only='))?.slice(7).split(',')

function run (label, cmd, args, opts = {}) {
  const t0 = Date.now()
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts })
  if (r.error !== undefined) {
    console.error(`build: ${label}: cannot run ${cmd}: ${r.error.message}. Run scripts/setup.sh (as root) to install the toolchain.`)
    process.exit(1)
  }
  if (r.status !== 0) {
    console.error(`build: ${label} failed (exit ${r.status})`)
    process.exit(r.status ?? 1)
  }
  console.error(`build: ${label} ok (${Date.now() - t0} ms)`)
}

const steps = {
  bpf: () => run('bpf', 'make', ['-s', '-C', 'bpf']),
  addon: () => {
    const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
    const configured = existsSync(join(root, 'bpf', 'addon', 'build', 'Makefile'))
    // Use the headers that ship with this Node (Debian/NodeSource put them
    // in <prefix>/include/node); node-gyp would otherwise try to download them.
    const prefix = dirname(dirname(process.execPath))
    const nodedir = existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? ['--nodedir=' + prefix] : []
    if (!configured) run('addon configure', process.execPath, [gyp, 'configure', '--silent', ...nodedir], { cwd: join(root, 'bpf', 'addon') })
    run('addon', process.execPath, [gyp, 'build', '--silent'], { cwd: join(root, 'bpf', 'addon') })
  },
  bench: () => {
    // the capture benchmark's load generator (C, so the storm is not the bottleneck)
    mkdirSync(join(root, 'scripts', 'bench', 'build'), { recursive: true })
    run('storm', 'cc', ['-O2', '-Wall', '-Werror', '-pthread', '-o', 'scripts/bench/build/storm', 'scripts/bench/storm.c'])
  },
  ts: () => run('typescript', process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']),
  console: () => {
    const script = join(root, 'backend', 'console', 'page', 'build.mjs')
    if (existsSync(script)) run('console page', process.execPath, [script])
  },
}

for (const [name, step] of Object.entries(steps)) {
  if (only === undefined || only.includes(name)) step()
}
