import t from 'tap'
import { readFileSync } from 'node:fs'
import { sigmaReport, withReport } from '../../scripts/rules/sigma-report.js'
import { rootPath } from '../../shared/paths.js'

// backend/rules/README.md carries the SigmaHQ compile report; a change to the
// compiler or the corpus that changes it must regenerate it
// (npx tsx scripts/rules/sigma-report.ts).

t.test('the compile report in backend/rules/README.md is current', async t => {
  const readme = readFileSync(rootPath('backend', 'rules', 'README.md'), 'utf8')
  const report = sigmaReport()
  t.equal(withReport(readme, report), readme, 'README matches the generated report; run npx tsx scripts/rules/sigma-report.ts')
  const m = /\*\*(\d+) of (\d+) compile/.exec(report)
  t.ok(m !== null)
  t.equal(Number(m?.[2]), 135, 'the 135 Linux process_creation, file_event and network_connection rules')
  t.ok(Number(m?.[1]) / 135 >= 0.95, `at least 95% compile (${m?.[1]} of 135)`)
  t.match(report, /proc_creation_lnx_omigod_scx_runasprovider_executescript\.yml` \| 29 \| detection\.selection: Sigma field 'LogonId' has no OCSF mapping/, 'a rule left out is named with its line and reason')
})
