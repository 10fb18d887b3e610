import { SEVERITY } from '../../../shared/ocsf/constants.js'
import { attacksFromTags } from './attack.js'
import { HOST_FIELD } from './evidence.js'
import { taxonomyOf } from './taxonomy.js'
import type { CorrelationSpec, DetectionRule, RuleTiming } from './compile.js'
import type { SigmaDetectionDoc, SigmaLevel } from './types.js'

// A detection rule no correlation consumes raises its own finding: an
// event_count of one, one incident per host, updated while matches go on and
// closed when they stop. A rule of a process taxonomy (process_creation,
// file_event, ...) makes one incident per host and process tree instead, so
// a loop or a cron job that repeats the same command raises one finding,
// while unrelated trees on the host raise their own.

export const LEVEL_SEVERITY: Record<SigmaLevel, number> = {
  informational: SEVERITY.INFORMATIONAL, low: SEVERITY.LOW, medium: SEVERITY.MEDIUM, high: SEVERITY.HIGH, critical: SEVERITY.CRITICAL,
}

const DEFAULT_WINDOW_MS = 300_000

export function parseTimespan (v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(v.trim())
  if (m === null) return undefined
  const n = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms']
  return n > 0 ? n : undefined
}

/** The standalone correlation of detection rule `d`; `track` projects a field for the rule's class. */
export function standaloneSpec (doc: SigmaDetectionDoc, d: DetectionRule, index: number, timing: RuleTiming, track: (field: string) => number): CorrelationSpec {
  const tax = taxonomyOf(doc.logsource)
  const treeRoot = tax?.treeRoot !== undefined ? [...tax.treeRoot] : undefined
  const context = tax?.context !== undefined ? [...tax.context] : undefined
  for (const f of [...treeRoot ?? [], ...context ?? []]) track(f)
  return {
    index,
    ref: d.ref,
    id: doc.id,
    name: doc.name,
    title: doc.title,
    description: doc.description,
    type: 'standalone',
    stage: 'host',
    detections: [d.index],
    groupBy: [HOST_FIELD],
    field: undefined,
    min: 1,
    timespanMs: timing.timespanMs ?? DEFAULT_WINDOW_MS,
    quietMs: timing.quietMs ?? parseTimespan(doc.picket.quiet) ?? DEFAULT_WINDOW_MS,
    updateIntervalMs: timing.updateIntervalMs ?? 1000,
    incidentBy: [HOST_FIELD],
    sources: undefined,
    severityId: LEVEL_SEVERITY[doc.level ?? 'medium'],
    level: doc.level ?? 'medium',
    attacks: attacksFromTags(doc.tags),
    tags: doc.tags,
    findingTitle: typeof doc.picket.title === 'string' ? doc.picket.title : doc.title,
    findingTypes: [typeof doc.picket.type === 'string' ? doc.picket.type : doc.title],
    loc: { file: doc.loc.file, line: doc.loc.line },
    ...(treeRoot !== undefined ? { treeRoot } : {}),
    ...(context !== undefined ? { context } : {}),
  }
}
