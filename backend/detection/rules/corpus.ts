import { isPicketError } from '../../../shared/errors.js'
import { compileRuleSet } from './compile.js'
import type { RuleProblem } from './errors.js'
import type { SigmaDoc } from './types.js'

// A rule corpus (sigmahq/) ships rules written for other log sources: some
// read fields or use features Picket does not map. Each corpus rule is
// compiled on its own first; one that cannot compile is left out with its
// file, line and reason, and the others load. The deployment's own rules
// stay strict (a problem there stops the backend).

/** The corpus documents that compile alone, and the problems of those that do not. */
export function admitCorpus (docs: readonly SigmaDoc[]): { docs: SigmaDoc[], skipped: RuleProblem[] } {
  const out: SigmaDoc[] = []
  const skipped: RuleProblem[] = []
  for (const d of docs) {
    if (d.corpus !== true || d.kind !== 'detection') { out.push(d); continue }
    try {
      compileRuleSet({ docs: [d], files: [d.loc.file] })
      out.push(d)
    } catch (err) {
      if (!isPicketError(err, 'PICKET_ERR_RULE')) throw err
      const problems = err.details?.problems as RuleProblem[] | undefined
      skipped.push(problems?.[0] ?? { file: d.loc.file, line: d.loc.line, reason: err.message })
    }
  }
  return { docs: out, skipped }
}
