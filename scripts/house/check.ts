import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, normalize, relative } from 'node:path'
import { FLOORS, FORBIDDEN, LONG_FILES_ALLOWED, MAX_LINES, NODE_FREE, PRODUCTION } from './rules.js'

// Walks the repository's TypeScript, reads each file's imports (static,
// dynamic and `export … from`), and reports every import that points up a
// floor, every Node import in a Node-free module, every production file over
// the size bound and every forbidden string. A regular expression over the
// source is enough here: the imports Picket writes are plain string literals,
// and a missed exotic form would only make the check weaker, never wrong.

export interface Violation { file: string, line: number, rule: string, message: string }

const IMPORT_RE = /(?:^|[^.\w])(?:import|export)\s*(?:type\s+)?(?:[^'"`;]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g

const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.tap', 'coverage', 'build', 'vendor', 'test-artifacts', 'data'])
const CODE = /\.(ts|mts|js|mjs|c|h)$/

export function listFiles (root: string, dir = ''): string[] {
  const out: string[] = []
  for (const name of readdirSync(join(root, dir))) {
    if (SKIP_DIRS.has(name) || name.startsWith('.')) continue
    const rel = dir === '' ? name : `${dir}/${name}`
    if (statSync(join(root, rel)).isDirectory()) out.push(...listFiles(root, rel))
    else if (CODE.test(name)) out.push(rel)
  }
  return out
}

/** The floor a repository path belongs to: the longest matching prefix. */
export function floorOf (path: string): typeof FLOORS[number] | undefined {
  let best: typeof FLOORS[number] | undefined
  for (const f of FLOORS) {
    if ((path === f.dir || path.startsWith(f.dir + '/')) && (best === undefined || f.dir.length > best.dir.length)) best = f
  }
  return best
}

export interface ImportRef { spec: string, line: number }

export function importsOf (text: string): ImportRef[] {
  const out: ImportRef[] = []
  for (const m of text.matchAll(IMPORT_RE)) {
    const spec = m[1] ?? m[2]
    if (spec === undefined) continue
    out.push({ spec, line: text.slice(0, m.index + m[0].indexOf(spec)).split('\n').length })
  }
  return out
}

/** Check one file's text; `file` is its path relative to the repository root. */
export function checkFile (file: string, text: string): Violation[] {
  const v: Violation[] = []
  const isTs = /\.(ts|mts|js|mjs)$/.test(file)
  const from = floorOf(file)
  if (isTs) {
    const nodeFree = NODE_FREE.some(p => p.endsWith('/') ? file.startsWith(p) : file === p)
    for (const { spec, line } of importsOf(text)) {
      if (nodeFree && (spec.startsWith('node:') || !spec.startsWith('.'))) {
        v.push({ file, line, rule: 'node-free', message: `${file} must not need Node (the console page bundles it, or a Node-free module imports it), but imports '${spec}'` })
      }
      if (!spec.startsWith('.') || from === undefined) continue
      const target = normalize(join(dirname(file), spec)).replace(/\\/g, '/')
      if (target.startsWith('..')) continue
      const to = floorOf(target)
      if (to === undefined || to.dir === from.dir) continue
      const allowed = from.mayImport.some(p => target === p || target.startsWith(p + '/'))
      if (!allowed) {
        v.push({ file, line, rule: 'floors', message: `${from.dir}/ may not import ${to.dir}/ ('${spec}'): floors point down (${from.dir}/ may import ${from.mayImport.join(', ') || 'only itself'})` })
      }
    }
  }
  const top = file.split('/')[0]
  if ((PRODUCTION as readonly string[]).includes(top)) {
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
    if (lines > MAX_LINES && !LONG_FILES_ALLOWED.some(re => re.test(file))) {
      v.push({ file, line: MAX_LINES + 1, rule: 'size', message: `${file} has ${lines} lines, over ${MAX_LINES}: split it by concern` })
    }
    for (const f of FORBIDDEN) {
      const i = text.indexOf(f.text)
      if (i >= 0) v.push({ file, line: text.slice(0, i).split('\n').length, rule: 'forbidden', message: `${file} contains ${f.text}: ${f.why}` })
    }
  }
  return v
}

export function checkHouse (root: string): Violation[] {
  const out: Violation[] = []
  for (const file of listFiles(root)) out.push(...checkFile(file, readFileSync(join(root, file), 'utf8')))
  return out
}

if (process.argv[1] !== undefined && relative(process.argv[1], new URL(import.meta.url).pathname).replace(/\.[jt]s$/, '') === '') {
  const root = join(dirname(new URL(import.meta.url).pathname), '..', '..')
  const v = checkHouse(root)
  for (const x of v) console.log(`${x.file}:${x.line}: [${x.rule}] ${x.message}`)
  console.log(v.length === 0 ? 'house rules: ok' : `house rules: ${v.length} violations`)
  process.exitCode = v.length === 0 ? 0 : 1
}
