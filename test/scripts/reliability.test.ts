import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeSection } from '../../scripts/bench/lib/report.js'
import { DRILLS } from '../../scripts/reliability/cli.js'
import { faultTable, hostileTable, type StoredResult } from '../../scripts/reliability/drill.js'

// The reliability drills keep running: the quickest one for real (a
// detection worker that dies mid-batch, on a real backend process), its row
// rendered, and a section rewritten between its markers as
// `npm run reliability` does with RELIABILITY.md.

t.test('the worker-crash drill runs for real and its row says what came of it', async t => {
  const d = DRILLS['worker-crash']
  const result = await d.run({ quick: true, log: () => {} })
  t.equal(result.kind, 'fault')
  if (result.kind !== 'fault') return
  const r = result.row
  t.equal(r.recordsSent, 200)
  t.equal(r.recordsAcked, 200, 'every record acked in the end')
  t.equal(r.findingsStored, r.findingsExpected, 'one finding per scanned host')
  t.ok(r.recoverMs !== undefined && r.recoverMs > 0, `recovered in ${r.recoverMs ?? NaN} ms`)
  const all: Record<string, StoredResult> = { 'worker-crash': { title: d.title, what: d.what, measuredAt: new Date().toISOString(), command: 'test', result } }
  const text = faultTable(Object.keys(DRILLS), all)
  t.match(text, /\| \*\*detection worker crash mid-batch\*\* \| 200 \| 200 \| 2 \| 2 \|/)
  t.notMatch(hostileTable(Object.keys(DRILLS), all), /worker crash/, 'a fault row stays out of the hostile table')

  const path = join(t.testdir({ 'R.md': '# R\n\n<!-- reliability:faults:start -->\nold\n<!-- reliability:faults:end -->\n\nkept\n' }), 'R.md')
  writeSection({ name: 'faults', title: 'Faults', command: 'test', quick: true, runs: 0, body: text }, path, { header: '# R\n', tag: 'reliability' })
  const doc = readFileSync(path, 'utf8')
  t.match(doc, /<!-- reliability:faults:start -->\n## Faults\n[\s\S]*detection worker crash[\s\S]*<!-- reliability:faults:end -->\n\nkept\n$/, 'the section is rewritten in place, the rest kept')
  t.notMatch(doc, /\nold\n/)
})
