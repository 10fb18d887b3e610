import { compileCondition, ConditionError, parseCondition } from './condition.js'
import { compileSelection, SelectionError, selectionFields, type ColPred } from './match.js'
import { impliesActivity, taxonomyOf } from './taxonomy.js'
import type { RuleLoc } from './types.js'

// A rule's `detection:` or `filter:` section: named selections and a
// condition over them, compiled into one predicate over the columns.

/** Compile a `detection:` or `filter:` section (selections + condition). Returns undefined after reporting problems. */
export function compileDetectionSection (
  loc: RuleLoc, sectionName: string, sec: Record<string, unknown>, reserved: string[],
  slotOf: (f: string) => number, bad: (loc: RuleLoc, path: Array<string | number>, reason: string) => void,
  logsource?: Record<string, unknown>
): ColPred | undefined {
  const tax = taxonomyOf(logsource)
  if (sec.timeframe !== undefined) {
    bad(loc, [sectionName, 'timeframe'], 'timeframe is Sigma v1 aggregation syntax; write a correlation rule (value_count / event_count) instead')
    return undefined
  }
  const names = Object.keys(sec).filter(k => k !== 'condition' && !reserved.includes(k))
  if (names.length === 0) { bad(loc, [sectionName], `${sectionName} has no selections`); return undefined }
  const preds = new Map<string, ColPred>()
  let ok = true
  for (const name of names) {
    for (const f of selectionFields(sec[name], tax)) slotOf(f)
    try {
      preds.set(name, compileSelection(sec[name], slotOf, [sectionName, name], tax))
    } catch (err) {
      if (!(err instanceof SelectionError)) throw err
      bad(loc, err.at, `${sectionName}.${name}: ${err.message}`)
      ok = false
    }
  }
  const cond = sec.condition
  if (cond === undefined) { bad(loc, [sectionName], `${sectionName}.condition is missing (e.g. condition: selection)`); return undefined }
  const conds = Array.isArray(cond) ? cond : [cond]
  if (conds.length === 0 || conds.some(x => typeof x !== 'string')) { bad(loc, [sectionName, 'condition'], 'condition must be a string such as "selection and not filter"'); return undefined }
  const compiled: ColPred[] = []
  for (const text of conds as string[]) {
    try {
      const node = parseCondition(text, names)
      if (ok) compiled.push(compileCondition(node, n => preds.get(n) as ColPred))
    } catch (err) {
      if (!(err instanceof ConditionError)) throw err
      bad(loc, [sectionName, 'condition'], `condition '${text}': ${err.message}`)
      ok = false
    }
  }
  if (!ok) return undefined
  const pred: ColPred = compiled.length === 1 ? compiled[0] : (c, b) => compiled.some(p => p(c, b))
  const activities = tax?.activities
  if (activities === undefined || !impliesActivity(logsource)) return pred
  const activity = compileSelection({ activity_id: activities }, slotOf, [sectionName])
  return (c, b) => activity(c, b) && pred(c, b)
}
