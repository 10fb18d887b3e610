import type { RuleProblem } from './errors.js'

// Rule documents as loaded from backend/rules/*.yml: plain data (structured
// cloneable), so the main thread validates them once and the detection
// workers compile the very same documents into their own matchers.

export interface RuleLoc {
  file: string
  /** 1-based line of the document's first key */
  line: number
  /** `path.join('\u0000')` → 1-based line, for every key and value in the document */
  lines: Record<string, number>
}

export type SigmaLevel = 'informational' | 'low' | 'medium' | 'high' | 'critical'

interface SigmaCommon {
  title: string
  id?: string
  name?: string
  description?: string
  status?: string
  level?: SigmaLevel
  tags: string[]
  /** Picket's own attributes (Sigma allows custom top-level attributes) */
  picket: Record<string, unknown>
  loc: RuleLoc
  /** from a rule corpus (a subfolder such as sigmahq/): skipped with its reason when it cannot compile */
  corpus?: boolean
}

/** A Sigma detection rule: `logsource` + `detection` selections + `condition`. */
export interface SigmaDetectionDoc extends SigmaCommon {
  kind: 'detection'
  logsource: Record<string, unknown>
  detection: Record<string, unknown>
}

/** A Sigma correlation rule (Sigma correlation specification v2). */
export interface SigmaCorrelationDoc extends SigmaCommon {
  kind: 'correlation'
  correlation: Record<string, unknown>
}

/** A Sigma filter (meta filter): its condition is ANDed into the rules it names. */
export interface SigmaFilterDoc extends SigmaCommon {
  kind: 'filter'
  logsource?: Record<string, unknown>
  filter: Record<string, unknown>
}

export type SigmaDoc = SigmaDetectionDoc | SigmaCorrelationDoc | SigmaFilterDoc

export interface RuleCollection {
  docs: SigmaDoc[]
  files: string[]
  /** corpus rules left out, each with its file, line and reason */
  skipped?: RuleProblem[]
}
