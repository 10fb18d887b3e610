import type { OcsfAttack } from '../../../shared/ocsf/types.js'
import type { ClassRouting } from '../projector.js'
import { attacksFromTags } from './attack.js'
import { allOf } from './condition.js'
import { problemAt, ruleError, type RuleProblem } from './errors.js'
import { isFieldPath, type ColPred } from './match.js'
import { EVIDENCE_FIELDS, HOST_FIELD } from './evidence.js'
import { classOf, routeClasses } from './logsource.js'
import { compileDetectionSection } from './section.js'
import { LEVEL_SEVERITY, parseTimespan, standaloneSpec } from './standalone.js'

export { parseTimespan } from './standalone.js'
import type { RuleCollection, RuleLoc, SigmaCorrelationDoc, SigmaDetectionDoc, SigmaDoc, SigmaFilterDoc, SigmaLevel } from './types.js'

// Rule documents → one RuleSet: the projected field list, a predicate per
// detection rule (filters folded in) and a plain-data spec per correlation.
// The main thread compiles once to validate (and to run the fleet stage);
// each detection worker compiles the same documents again for its matchers.

export { EVIDENCE_FIELDS, EVIDENCE_SLOT, HOST_FIELD, type EvidenceField } from './evidence.js'

export interface RuleTiming {
  /** replaces every correlation's timespan (tests use short windows) */
  timespanMs?: number
  /** replaces every incident's quiet period */
  quietMs?: number
  /** minimum gap between two Update findings of one incident */
  updateIntervalMs?: number
}

export interface CompileOptions { timing?: RuleTiming }

export interface DetectionRule {
  index: number
  ref: string
  id: string | undefined
  name: string | undefined
  title: string
  match: ColPred
  /** correlations that consume this rule's matches */
  correlations: number[]
  /** the event class its logsource names: it sees records of that class only */
  classUid: number
}

export interface SourcesSpec {
  field: string
  min: number
  /** index of the correlation whose per-source threshold a source must stay under */
  below: number | undefined
}

/** Plain data: identical on the main thread and in every worker. */
export interface CorrelationSpec {
  index: number
  ref: string
  id: string | undefined
  name: string | undefined
  title: string
  description: string | undefined
  /** `standalone` = a detection rule that alerts on its own (one incident per host) */
  type: 'value_count' | 'event_count' | 'temporal' | 'temporal_ordered' | 'standalone'
  stage: 'host' | 'fleet'
  detections: number[]
  groupBy: string[]
  field: string | undefined
  /** the condition as a minimum: gte N → N, gt N → N + 1 */
  min: number
  timespanMs: number
  quietMs: number
  updateIntervalMs: number
  incidentBy: string[]
  sources: SourcesSpec | undefined
  severityId: number
  level: SigmaLevel
  attacks: OcsfAttack[]
  tags: string[]
  findingTitle: string
  findingTypes: string[]
  loc: { file: string, line: number }
  /** standalone rules of a process taxonomy: candidate paths of the process-tree root, oldest ancestor first (one incident per root) */
  treeRoot?: string[]
  /** fields of the first matching record the finding shows (the process, its command line, the file) */
  context?: string[]
}

export interface RuleSet {
  paths: string[]
  detections: DetectionRule[]
  correlations: CorrelationSpec[]
  /** which slots each event class's records fill (projector.ts) */
  routing: ClassRouting
}


const UNSUPPORTED_TYPES = ['value_sum', 'value_avg', 'value_percentile', 'value_median']
const SUPPORTED_TYPES = ['value_count', 'event_count', 'temporal', 'temporal_ordered']


function refOf (d: SigmaDoc): string {
  return d.name ?? d.id ?? d.title
}

function hasRef (d: SigmaDoc, ref: string): boolean {
  return d.id === ref || d.name === ref
}

export function compileRuleSet (collection: RuleCollection, opts: CompileOptions = {}): RuleSet {
  const problems: RuleProblem[] = []
  const docs = collection.docs
  const bad = (loc: RuleLoc, path: Array<string | number>, reason: string): void => { problems.push(problemAt(loc, path, reason)) }

  // ids and names are how rules refer to each other: they must be unique
  const seen = new Map<string, SigmaDoc>()
  for (const d of docs) {
    for (const [k, v] of [['id', d.id], ['name', d.name]] as const) {
      if (v === undefined) continue
      const prev = seen.get(v)
      if (prev !== undefined && prev !== d) bad(d.loc, [k], `${k} '${v}' is already used by '${prev.title}' (${prev.loc.file}:${prev.loc.line}); ids and names must be unique`)
      else seen.set(v, d)
    }
  }

  const detectionDocs = docs.filter((d): d is SigmaDetectionDoc => d.kind === 'detection')
  const filterDocs = docs.filter((d): d is SigmaFilterDoc => d.kind === 'filter')
  const corrDocs = docs.filter((d): d is SigmaCorrelationDoc => d.kind === 'correlation')

  const resolveDetection = (loc: RuleLoc, path: Array<string | number>, ref: unknown): number | undefined => {
    if (typeof ref !== 'string') { bad(loc, path, 'a rule reference must be the id or name of a detection rule'); return undefined }
    const i = detectionDocs.findIndex(d => hasRef(d, ref))
    if (i >= 0) return i
    const other = docs.find(d => hasRef(d, ref))
    bad(loc, path, other !== undefined
      ? `'${ref}' is a ${other.kind} rule; only detection rules can be referenced here (chained correlations are not supported)`
      : `no detection rule has the id or name '${ref}'`)
    return undefined
  }

  // field paths → column slots; evidence fields first so their slots are stable
  const paths: string[] = [...EVIDENCE_FIELDS]
  const slotOf = (field: string): number => {
    let i = paths.indexOf(field)
    if (i < 0) { i = paths.length; paths.push(field) }
    return i
  }

  // the slots each detection rule reads, with its filters and correlations: its class's records fill them
  const reads = detectionDocs.map(() => new Set<number>())
  const tracking = (into: Set<number>) => (field: string): number => { const s = slotOf(field); into.add(s); return s }
  const classes = detectionDocs.map(d => {
    const c = classOf(d.logsource)
    if ('problem' in c) { bad(d.loc, ['logsource', 'category'], c.problem); return 0 }
    return c.uid
  })

  // filters: a predicate per filter, ANDed into each rule it names
  const filtersFor = new Map<number, ColPred[]>()
  for (const f of filterDocs) {
    const fsec = f.filter
    const fields = new Set<number>()
    const pred = compileDetectionSection(f.loc, 'filter', fsec, ['rules'], tracking(fields), bad, f.logsource)
    if (!Array.isArray(fsec.rules) || fsec.rules.length === 0) {
      bad(f.loc, ['filter', 'rules'], 'filter.rules must list the ids or names of the detection rules the filter applies to')
      continue
    }
    const own = f.logsource?.category !== undefined ? classOf(f.logsource) : undefined
    if (own !== undefined && 'problem' in own) bad(f.loc, ['logsource', 'category'], own.problem)
    fsec.rules.forEach((ref, i) => {
      const di = resolveDetection(f.loc, ['filter', 'rules', i], ref)
      if (di === undefined) return
      if (own !== undefined && 'uid' in own && own.uid !== classes[di]) bad(f.loc, ['filter', 'rules', i], `'${String(ref)}' reads class ${classes[di]} records but this filter's logsource is class ${own.uid}; a filter applies to rules of its own class`)
      for (const s of fields) reads[di].add(s)
      if (pred !== undefined) filtersFor.set(di, [...(filtersFor.get(di) ?? []), pred])
    })
  }

  const detections: DetectionRule[] = detectionDocs.map((d, index) => {
    const pred = compileDetectionSection(d.loc, 'detection', d.detection, [], tracking(reads[index]), bad, d.logsource)
    const filters = filtersFor.get(index) ?? []
    const match = pred === undefined ? () => false : filters.length === 0 ? pred : allOf([pred, ...filters])
    return { index, ref: refOf(d), id: d.id, name: d.name, title: d.title, match, correlations: [], classUid: classes[index] }
  })

  const timing = opts.timing ?? {}
  const correlations: CorrelationSpec[] = []
  const usedWithoutGenerate = new Set<number>()
  const pendingBelow: Array<{ spec: CorrelationSpec, ref: unknown, loc: RuleLoc }> = []

  for (const c of corrDocs) {
    const sec = c.correlation
    const at = (...p: Array<string | number>): Array<string | number> => ['correlation', ...p]
    const before = problems.length
    const type = sec.type
    if (typeof type !== 'string') { bad(c.loc, at('type'), `correlation.type is required: ${SUPPORTED_TYPES.join(', ')}`); continue }
    if (!SUPPORTED_TYPES.includes(type)) {
      bad(c.loc, at('type'), UNSUPPORTED_TYPES.includes(type)
        ? `correlation type '${type}' is not supported by Picket's streaming engine (supported: ${SUPPORTED_TYPES.join(', ')})`
        : `unknown correlation type '${type}' (Sigma defines event_count, value_count, temporal, temporal_ordered, ...; Picket supports ${SUPPORTED_TYPES.join(', ')})`)
      continue
    }
    // temporal: every rule matched within the timespan (temporal_ordered: in the order listed); no condition
    const temporal = type === 'temporal' || type === 'temporal_ordered'
    if (sec.aliases !== undefined) bad(c.loc, at('aliases'), 'correlation aliases are not supported; use the same OCSF field path in every referenced rule')
    const dets: number[] = []
    if (!Array.isArray(sec.rules) || sec.rules.length === 0) bad(c.loc, at('rules'), 'correlation.rules must list the ids or names of one or more detection rules')
    else sec.rules.forEach((r, i) => { const di = resolveDetection(c.loc, at('rules', i), r); if (di !== undefined) dets.push(di) })
    const groupBy = sec['group-by']
    if (groupBy === undefined) bad(c.loc, at(), `correlation.group-by is missing: name the fields that make one group (e.g. [${HOST_FIELD}, src_endpoint.ip])`)
    else if (!Array.isArray(groupBy) || groupBy.length === 0 || groupBy.some(g => typeof g !== 'string' || !isFieldPath(g))) bad(c.loc, at('group-by'), 'correlation.group-by must be a non-empty list of OCSF field paths')
    const timespanMs = parseTimespan(sec.timespan)
    if (sec.timespan === undefined) bad(c.loc, at(), 'correlation.timespan is missing (e.g. 5m)')
    else if (timespanMs === undefined) bad(c.loc, at('timespan'), `timespan '${String(sec.timespan)}' is not a duration such as 30s, 5m, 1h or 1d`)
    const cond = sec.condition
    let min = 0
    let field: string | undefined
    if (temporal) {
      min = 1
      if (cond !== undefined) bad(c.loc, at('condition'), `a ${type} correlation fires when all its rules matched within the timespan; it takes no condition`)
    } else if (cond === null || typeof cond !== 'object' || Array.isArray(cond)) {
      bad(c.loc, cond === undefined ? at() : at('condition'), 'correlation.condition must be a mapping such as {gte: 15} (value_count also needs field)')
    } else {
      const cm = cond as Record<string, unknown>
      const ops = Object.keys(cm).filter(k => k !== 'field')
      const unsupported = ops.filter(k => k !== 'gte' && k !== 'gt')
      if (unsupported.length > 0) bad(c.loc, at('condition', unsupported[0]), `condition operator '${unsupported[0]}' is not supported: a streaming alert fires when a count reaches a minimum, so use gte or gt`)
      else if (ops.length !== 1) bad(c.loc, at('condition'), 'the condition needs exactly one of gte or gt')
      else {
        const n = cm[ops[0]]
        if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) bad(c.loc, at('condition', ops[0]), `${ops[0]} must be a positive integer`)
        else min = ops[0] === 'gt' ? n + 1 : n
      }
      if (type === 'value_count') {
        if (typeof cm.field !== 'string' || !isFieldPath(cm.field)) bad(c.loc, cm.field === undefined ? at('condition') : at('condition', 'field'), 'a value_count condition needs field: the OCSF field whose distinct values are counted (e.g. dst_endpoint.port)')
        else field = cm.field
      } else if (cm.field !== undefined) bad(c.loc, at('condition', 'field'), 'event_count counts events; it takes no field (did you mean value_count?)')
    }
    if (sec.generate !== undefined && typeof sec.generate !== 'boolean') bad(c.loc, at('generate'), 'generate must be true or false')
    const px = c.picket
    const ext = parseExtension(c, groupBy, bad)
    if (problems.length > before) continue
    const gb = groupBy as string[]
    const stage: 'host' | 'fleet' = gb.includes(HOST_FIELD) ? 'host' : 'fleet'
    if (stage === 'host' && ext.incidentBy !== undefined && ext.incidentBy.length !== gb.length) {
      bad(c.loc, ['picket', 'incident-by'], `picket.incident-by merges groups across hosts and applies to fleet rules (group-by without ${HOST_FIELD}); a host rule makes one incident per group`)
      continue
    }
    if (stage === 'fleet' && type !== 'value_count') {
      bad(c.loc, at('group-by'), `${type === 'event_count' ? 'an' : 'a'} ${type} without ${HOST_FIELD} in group-by would count events across hosts, which Picket does not do; add ${HOST_FIELD}`)
      continue
    }
    const tspan = timing.timespanMs ?? (timespanMs as number)
    const spec: CorrelationSpec = {
      index: correlations.length,
      ref: refOf(c),
      id: c.id,
      name: c.name,
      title: c.title,
      description: c.description,
      type: type as CorrelationSpec['type'],
      stage,
      detections: dets,
      groupBy: gb,
      field,
      min,
      timespanMs: tspan,
      quietMs: timing.quietMs ?? ext.quietMs ?? tspan,
      updateIntervalMs: timing.updateIntervalMs ?? ext.updateIntervalMs ?? 1000,
      incidentBy: ext.incidentBy ?? gb,
      sources: undefined,
      severityId: LEVEL_SEVERITY[c.level ?? 'medium'],
      level: c.level ?? 'medium',
      attacks: attacksFromTags(c.tags),
      tags: c.tags,
      findingTitle: typeof px.title === 'string' ? px.title : c.title,
      findingTypes: [typeof px.type === 'string' ? px.type : c.title],
      loc: { file: c.loc.file, line: c.loc.line },
    }
    if (ext.sources !== undefined) {
      spec.sources = { field: ext.sources.field, min: ext.sources.min, below: undefined }
      if (ext.sources.below !== undefined) pendingBelow.push({ spec, ref: ext.sources.below, loc: c.loc })
    }
    for (const p of [...gb, ...(field !== undefined ? [field] : []), ...(spec.sources !== undefined ? [spec.sources.field] : [])]) {
      const slot = slotOf(p)
      for (const di of dets) reads[di].add(slot)
    }
    correlations.push(spec)
    for (const di of dets) {
      detections[di].correlations.push(spec.index)
      if (sec.generate !== true) usedWithoutGenerate.add(di)
    }
  }

  for (const { spec, ref, loc } of pendingBelow) {
    const target = correlations.find(x => x.id === ref || x.name === ref)
    const path = ['picket', 'sources', 'each-below']
    if (target === undefined) { bad(loc, path, `each-below names '${String(ref)}', which is not a correlation rule`); continue }
    const src = (spec.sources as SourcesSpec).field
    const want = [...spec.groupBy, src].sort().join(',')
    if (target.type !== 'value_count' || target.stage !== 'host' || [...target.groupBy].sort().join(',') !== want || target.field !== spec.field) {
      bad(loc, path, `each-below needs a host value_count of ${spec.field ?? '?'} grouped by [${[...spec.groupBy, src].join(', ')}]; '${String(ref)}' is not one`)
      continue
    }
    (spec.sources as SourcesSpec).below = target.index
  }

  // a detection rule no correlation consumes alerts on its own: one incident per host (and process tree)
  for (const d of detections) {
    if (usedWithoutGenerate.has(d.index)) continue
    const spec = standaloneSpec(detectionDocs[d.index], d, correlations.length, timing, tracking(reads[d.index]))
    correlations.push(spec)
    d.correlations.push(spec.index)
  }

  if (problems.length > 0) throw ruleError(problems)
  return { paths, detections, correlations, routing: routeClasses(detections, reads) }
}

interface Extension {
  quietMs?: number
  updateIntervalMs?: number
  incidentBy?: string[]
  sources?: { field: string, min: number, below: unknown }
}

function parseExtension (c: SigmaCorrelationDoc, groupBy: unknown, bad: (loc: RuleLoc, path: Array<string | number>, reason: string) => void): Extension {
  const px = c.picket
  const out: Extension = {}
  const known = ['quiet', 'update-interval', 'incident-by', 'sources', 'title', 'type']
  for (const k of Object.keys(px)) {
    if (!known.includes(k)) bad(c.loc, ['picket', k], `unknown picket setting '${k}' (known: ${known.join(', ')})`)
  }
  if (px.quiet !== undefined) {
    const q = parseTimespan(px.quiet)
    if (q === undefined) bad(c.loc, ['picket', 'quiet'], 'picket.quiet must be a duration such as 2m')
    else out.quietMs = q
  }
  if (px['update-interval'] !== undefined) {
    const u = parseTimespan(px['update-interval'])
    if (u === undefined) bad(c.loc, ['picket', 'update-interval'], 'picket.update-interval must be a duration such as 1s')
    else out.updateIntervalMs = u
  }
  if (px['incident-by'] !== undefined) {
    const ib = px['incident-by']
    const gb = Array.isArray(groupBy) ? groupBy : []
    if (!Array.isArray(ib) || ib.length === 0 || ib.some(x => typeof x !== 'string' || !gb.includes(x))) {
      bad(c.loc, ['picket', 'incident-by'], 'picket.incident-by must be a non-empty subset of group-by: the fields that make one incident')
    } else out.incidentBy = ib as string[]
  }
  if (px.sources !== undefined) {
    const s = px.sources as Record<string, unknown> | null
    if (s === null || typeof s !== 'object' || typeof s.field !== 'string' || !isFieldPath(s.field)) {
      bad(c.loc, ['picket', 'sources'], 'picket.sources needs field (the source field, e.g. src_endpoint.ip) and gte (how many distinct sources)')
    } else if (typeof s.gte !== 'number' || !Number.isInteger(s.gte) || s.gte < 1) {
      bad(c.loc, ['picket', 'sources', 'gte'], 'picket.sources.gte must be a positive integer')
    } else if (c.correlation.type !== 'value_count' || !Array.isArray(groupBy) || !groupBy.includes(HOST_FIELD)) {
      bad(c.loc, ['picket', 'sources'], `picket.sources applies to a value_count grouped by ${HOST_FIELD}`)
    } else {
      out.sources = { field: s.field, min: s.gte, below: s['each-below'] }
    }
  }
  return out
}
