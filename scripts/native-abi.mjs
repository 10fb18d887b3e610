#!/usr/bin/env node
// `<node> scripts/native-abi.mjs`: make better-sqlite3 loadable by <node>.
//
// better-sqlite3 12 is built on V8's API, so a binary fits one Node ABI
// (NODE_MODULE_VERSION), and Picket runs from one node_modules on Node 24 and
// on Debian's Node 20. Each ABI gets its own binary where better-sqlite3's
// loader (`bindings`) looks for one by ABI:
//   lib/binding/node-v<ABI>-<platform>-<arch>/better_sqlite3.node
// build/Release/better_sqlite3.node (what npm ci builds) is moved there:
// bindings tries it first and gives up on a binary of another ABI.
// A missing binary is built with node-gyp against this node's own headers
// (<prefix>/include/node), in a copy of the package so that running
// processes never see a half-built file. Quick when all is in place.
import { spawnSync } from 'node:child_process'
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const pkg = join(root, 'node_modules', 'better-sqlite3')
const file = 'better_sqlite3.node'
const abiDir = abi => join(pkg, 'lib', 'binding', `node-v${abi}-${process.platform}-${process.arch}`)
const require = createRequire(import.meta.url)

function fail (msg) {
  console.error(`native-abi: ${msg}`)
  process.exit(1)
}

/** Copy `from` to `dir/file` so that no reader ever sees a partial file. */
function place (from, dir) {
  mkdirSync(dir, { recursive: true })
  const tmp = join(dir, `.${file}.${process.pid}`)
  copyFileSync(from, tmp)
  renameSync(tmp, join(dir, file))
}

/** The ABI a binary was built for: ours if it loads (in a child, to keep this process clean), else the one the refusal names. */
function abiOf (path) {
  const r = spawnSync(process.execPath, ['-e', 'process.dlopen({ exports: {} }, process.argv[1])', path], { encoding: 'utf8' })
  if (r.status === 0) return process.versions.modules
  const m = /compiled against a different Node\.js version using\s+NODE_MODULE_VERSION (\d+)/.exec(r.stderr)
  if (m === null) fail(`cannot tell which Node ABI ${path} is for: ${r.stderr.trim()}`)
  return m[1]
}

if (!existsSync(join(pkg, 'package.json'))) fail(`${pkg} is missing: run npm ci (scripts/setup.sh) first`)

const built = join(pkg, 'build', 'Release', file)
if (existsSync(built)) {
  place(built, abiDir(abiOf(built)))
  unlinkSync(built)
}

const mine = abiDir(process.versions.modules)
if (!existsSync(join(mine, file))) {
  const prefix = dirname(dirname(process.execPath))
  if (!existsSync(join(prefix, 'include', 'node', 'node.h'))) {
    fail(`Node ${process.version} (${process.execPath}) has no headers in ${prefix}/include/node to build better-sqlite3 with, and none can be downloaded here`)
  }
  console.error(`native-abi: building better-sqlite3 for Node ${process.version} (ABI ${process.versions.modules}); once, a few minutes`)
  const t0 = Date.now()
  const work = mkdtempSync(join(tmpdir(), 'picket-sqlite-'))
  try {
    cpSync(pkg, work, { recursive: true, filter: src => !/[/\\](build|lib[/\\]binding)$/.test(src) })
    const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
    const env = { ...process.env }
    delete env.npm_config_nodedir // another node's headers; --nodedir says which
    const r = spawnSync(process.execPath, [gyp, 'rebuild', '--release', '--jobs=max', '--nodedir=' + prefix], { cwd: work, env, encoding: 'utf8', maxBuffer: 64 << 20 })
    if (r.status !== 0) fail(`building better-sqlite3 for Node ${process.version} failed (node-gyp exit ${r.status ?? r.signal}):\n${(r.stdout + r.stderr).slice(-4000)}`)
    place(join(work, 'build', 'Release', file), mine)
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
  console.error(`native-abi: built better-sqlite3 for Node ${process.version} (ABI ${process.versions.modules}) in ${Math.round((Date.now() - t0) / 1000)} s`)
}

// Prove it the way Picket loads it.
const Database = require('better-sqlite3')
const db = new Database(':memory:')
db.prepare('select sqlite_version() as v').get()
db.close()
