import { PicketError } from '../../../shared/errors.js'
import type { RuleLoc } from './types.js'

export interface RuleProblem { file: string, line: number, reason: string }

/** Line of the deepest node on `path` that the loader saw (falls back to the document's line). */
export function lineOf (loc: RuleLoc, path: ReadonlyArray<string | number>): number {
  for (let n = path.length; n > 0; n--) {
    const line = loc.lines[path.slice(0, n).join('\u0000')]
    if (line !== undefined) return line
  }
  return loc.line
}

export function problemAt (loc: RuleLoc, path: ReadonlyArray<string | number>, reason: string): RuleProblem {
  return { file: loc.file, line: lineOf(loc, path), reason }
}

export function formatProblem (p: RuleProblem): string {
  return `${p.file}:${p.line}: ${p.reason}`
}

export function ruleError (problems: RuleProblem[]): PicketError {
  const lines = problems.map(formatProblem)
  const head = problems.length === 1 ? 'a rule file is invalid' : `${problems.length} problems in the rule files`
  return new PicketError('PICKET_ERR_RULE', `${head}; fix the rule or move the file out of the rules folder:\n${lines.join('\n')}`, { problems })
}
