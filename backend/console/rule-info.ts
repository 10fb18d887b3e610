import { readFileSync, statSync } from 'node:fs'
import { LineCounter, parseAllDocuments } from 'yaml'
import type { RuleInfo } from './types.js'

// The matched rule as its author wrote it (author, references, false
// positives, level), read back from the rule file the finding names
// (unmapped.picket.rule.file and .line). The compiled rule keeps what
// detection needs and no more; an analyst reading a finding wants the
// rest, and the file is the one place it is written.

const MAX_FILE_BYTES = 1 << 20
const MAX_LIST = 20
const MAX_TEXT = 1000
const CACHE_FILES = 256

interface Cached { mtimeMs: number, docs: Array<{ line: number, info: RuleInfo }> }

const cache = new Map<string, Cached>()

function text (v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim().slice(0, MAX_TEXT) : undefined
}

function list (v: unknown): string[] {
  const items = Array.isArray(v) ? v : typeof v === 'string' ? [v] : []
  return items.map(text).filter((s): s is string => s !== undefined).slice(0, MAX_LIST)
}

function infoOf (doc: Record<string, unknown>): RuleInfo {
  const out: RuleInfo = { references: list(doc.references), falsepositives: list(doc.falsepositives) }
  for (const k of ['id', 'name', 'title', 'author', 'level', 'status', 'date', 'modified'] as const) {
    const v = text(doc[k])
    if (v !== undefined) out[k] = v
  }
  return out
}

function load (file: string): Cached | undefined {
  if (!/\.ya?ml$/.test(file)) return undefined
  let st
  try { st = statSync(file) } catch { return undefined }
  if (!st.isFile() || st.size > MAX_FILE_BYTES) return undefined
  const hit = cache.get(file)
  if (hit !== undefined && hit.mtimeMs === st.mtimeMs) return hit
  const lc = new LineCounter()
  let docs
  try { docs = parseAllDocuments(readFileSync(file, 'utf8'), { lineCounter: lc }) } catch { return undefined }
  if (!Array.isArray(docs)) return undefined
  const out: Cached = { mtimeMs: st.mtimeMs, docs: [] }
  for (const d of docs) {
    const js: unknown = d.errors.length === 0 ? d.toJS() : undefined
    if (typeof js !== 'object' || js === null || Array.isArray(js)) continue
    const start = d.contents?.range?.[0] ?? d.range[0]
    out.docs.push({ line: lc.linePos(start).line, info: infoOf(js as Record<string, unknown>) })
  }
  if (cache.size >= CACHE_FILES) cache.delete(cache.keys().next().value as string)
  cache.set(file, out)
  return out
}

/** The rule document of `file` that starts at `line` (or the last one before it); undefined when the file is gone or unreadable. */
export function ruleInfo (file: string, line: number): RuleInfo | undefined {
  const c = load(file)
  if (c === undefined) return undefined
  let best: RuleInfo | undefined
  for (const d of c.docs) if (d.line <= line) best = d.info
  return best ?? c.docs[0]?.info
}
