import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document } from 'yaml'
import { PicketError } from '../../../shared/errors.js'
import { admitCorpus } from './corpus.js'
import { problemAt, ruleError, type RuleProblem } from './errors.js'
import type { RuleCollection, RuleLoc, SigmaDoc, SigmaLevel } from './types.js'

const LEVELS: readonly SigmaLevel[] = ['informational', 'low', 'medium', 'high', 'critical']

/**
 * Load every `*.yml` / `*.yaml` in `dir` and its subfolders (sorted by path).
 * The top folder holds the deployment's own rules: a problem in one throws
 * PICKET_ERR_RULE naming file, line and reason. A subfolder holds a rule
 * corpus (sigmahq/): its documents are marked `corpus`, one that does not
 * parse is listed in `skipped` and the rest load (corpus.ts admits them).
 */
export function loadRuleDir (dir: string): RuleCollection {
  let names: string[]
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory')
    names = (readdirSync(dir, { recursive: true }) as string[]).filter(n => /\.ya?ml$/i.test(n)).sort()
  } catch (err) {
    throw new PicketError('PICKET_ERR_RULE', `rules folder ${dir} cannot be read: ${(err as Error).message}; pass --rules DIR with a folder of Sigma-layout *.yml files`)
  }
  if (names.length === 0) {
    throw new PicketError('PICKET_ERR_RULE', `rules folder ${dir} holds no *.yml rule files; pass --rules DIR with at least one rule`)
  }
  const docs: SigmaDoc[] = []
  const problems: RuleProblem[] = []
  const skipped: RuleProblem[] = []
  const files: string[] = []
  for (const name of names) {
    const file = join(dir, name)
    const corpus = relative(dir, file).includes(sep)
    files.push(file)
    const r = parseRuleText(readFileSync(file, 'utf8'), file)
    for (const d of r.docs) docs.push(corpus ? { ...d, corpus } : d)
    ;(corpus ? skipped : problems).push(...r.problems)
  }
  if (problems.length > 0) throw ruleError(problems)
  const admitted = admitCorpus(docs)
  return { docs: admitted.docs, files, skipped: [...skipped, ...admitted.skipped] }
}

/** Parse one file's text (possibly several `---` documents). Problems are returned, not thrown. */
export function parseRuleText (text: string, file: string): { docs: SigmaDoc[], problems: RuleProblem[] } {
  const lineCounter = new LineCounter()
  const parsed = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false })
  const docs: SigmaDoc[] = []
  const problems: RuleProblem[] = []
  const list = Array.isArray(parsed) ? parsed : []
  for (const doc of list) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const line = e.linePos?.[0].line ?? lineCounter.linePos(e.pos[0]).line
        problems.push({ file, line, reason: `YAML: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}` })
      }
      continue
    }
    if (doc.contents === null) continue
    const lines: Record<string, number> = {}
    indexLines(doc, lineCounter, lines)
    const start = doc.contents.range?.[0] ?? 0
    const loc: RuleLoc = { file, line: lineCounter.linePos(start).line, lines }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown
    const r = toSigmaDoc(value, loc)
    if ('problem' in r) problems.push(r.problem)
    else docs.push(r.doc)
  }
  return { docs, problems }
}

function indexLines (doc: Document, lc: LineCounter, out: Record<string, number>): void {
  const walk = (node: unknown, path: Array<string | number>): void => {
    if (isMap(node)) {
      for (const pair of node.items) {
        if (!isPair(pair)) continue
        const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key)
        const p = [...path, key]
        const kr = (pair.key as { range?: [number, number, number] } | null)?.range
        if (kr !== undefined) out[p.join('\u0000')] = lc.linePos(kr[0]).line
        walk(pair.value, p)
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => {
        const p = [...path, i]
        const r = (item as { range?: [number, number, number] } | null)?.range
        if (r !== undefined) out[p.join('\u0000')] = lc.linePos(r[0]).line
        walk(item, p)
      })
    }
  }
  walk(doc.contents, [])
}

function toSigmaDoc (value: unknown, loc: RuleLoc): { doc: SigmaDoc } | { problem: RuleProblem } {
  const bad = (path: Array<string | number>, reason: string): { problem: RuleProblem } => ({ problem: problemAt(loc, path, reason) })
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return bad([], 'a rule document must be a mapping with title and one of detection, correlation or filter')
  }
  const v = value as Record<string, unknown>
  if (typeof v.title !== 'string' || v.title.trim() === '') return bad(['title'], 'title is required and must be a non-empty string')
  for (const k of ['id', 'name', 'description', 'status'] as const) {
    if (v[k] !== undefined && typeof v[k] !== 'string') return bad([k], `${k} must be a string`)
  }
  if (v.level !== undefined && !LEVELS.includes(v.level as SigmaLevel)) {
    return bad(['level'], `level '${String(v.level)}' is not one of ${LEVELS.join(', ')}`)
  }
  let tags: string[] = []
  if (v.tags !== undefined) {
    if (!Array.isArray(v.tags) || v.tags.some(t => typeof t !== 'string')) return bad(['tags'], 'tags must be a list of strings, e.g. [attack.discovery, attack.t1046]')
    tags = v.tags as string[]
  }
  let picket: Record<string, unknown> = {}
  if (v.picket !== undefined) {
    if (v.picket === null || typeof v.picket !== 'object' || Array.isArray(v.picket)) return bad(['picket'], 'picket must be a mapping of Picket settings')
    picket = v.picket as Record<string, unknown>
  }
  const kinds = (['detection', 'correlation', 'filter'] as const).filter(k => v[k] !== undefined)
  if (kinds.length !== 1) {
    return bad([], kinds.length === 0
      ? 'the document has no detection, correlation or filter section; every Sigma rule needs exactly one'
      : `the document has both ${kinds.join(' and ')}; a Sigma rule has exactly one of them (use separate --- documents)`)
  }
  const kind = kinds[0]
  const section = v[kind]
  if (section === null || typeof section !== 'object' || Array.isArray(section)) return bad([kind], `${kind} must be a mapping`)
  const common = {
    title: v.title,
    ...(v.id !== undefined ? { id: v.id as string } : {}),
    ...(v.name !== undefined ? { name: v.name as string } : {}),
    ...(v.description !== undefined ? { description: v.description as string } : {}),
    ...(v.status !== undefined ? { status: v.status as string } : {}),
    ...(v.level !== undefined ? { level: v.level as SigmaLevel } : {}),
    tags,
    picket,
    loc,
  }
  const logsource = v.logsource
  if (logsource !== undefined && (logsource === null || typeof logsource !== 'object' || Array.isArray(logsource))) {
    return bad(['logsource'], 'logsource must be a mapping, e.g. {category: network_connection, product: picket}')
  }
  if (kind === 'detection') {
    if (logsource === undefined) return bad(['detection'], 'a detection rule needs a logsource (e.g. {category: network_connection, product: picket})')
    return { doc: { kind, ...common, logsource: logsource as Record<string, unknown>, detection: section as Record<string, unknown> } }
  }
  if (kind === 'correlation') return { doc: { kind, ...common, correlation: section as Record<string, unknown> } }
  return { doc: { kind, ...common, ...(logsource !== undefined ? { logsource: logsource as Record<string, unknown> } : {}), filter: section as Record<string, unknown> } }
}
