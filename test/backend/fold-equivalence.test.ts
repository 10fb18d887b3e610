import t from 'tap'
import { unpackValue } from '../../shared/codec.js'
import { expandBatch, type LeanContext } from '../../shared/ocsf/lean.js'
import { buildPlan, type PlanOptions } from '../../scripts/injector/index.js'
import { eventsIn, FOLD_RULES, foldRecords, outcome } from '../helpers/fold.js'
import { EngineRig, pack, rulesDir } from './helpers/records.js'

// Folding must not change what detection finds. Each of the injector's
// scenarios (scans, repeated scans, sweeps, distributed scans, UDP, benign
// load) goes to two engines: once as the injector plans it (folding off),
// once folded as the kernel folds (test/helpers/fold.ts, 1 s window). The
// shipped rules plus an event_count rule must give the same findings: the
// same rules, hosts, sources, distinct ports and records counted.

const WINDOW_MS = 1000
const SCENARIOS: Record<string, PlanOptions> = {
  'a 200-port scan': { ports: 200 },
  'a 200-port scan, each port probed 5 times': { ports: 200, repeat: 5, rate: 2000 },
  '10 ports hammered 40 times each (no scan; a flood)': { ports: 10, repeat: 40, rate: 1000 },
  'a sweep of 40 hosts, 3 probes each': { hosts: 40, ports: 1, repeat: 3, rate: 5000 },
  'a distributed scan from 8 sources, twice': { sources: 8, ports: 200, repeat: 2, rate: 4000 },
  'a UDP scan, 3 rounds': { udp: true, ports: 100, repeat: 3, rate: 1000 },
  'benign load: 3000 connections of 50 clients to 3 ports': { ports: 0, benign: 3000, benignClients: 50, rate: 1000 },
  'a scan hidden in benign load, 2 rounds': { ports: 200, repeat: 2, benign: 2000, rate: 1000 },
}

type Rec = Record<string, unknown>

function feed (rig: EngineRig, hostId: string, records: readonly Rec[], now: number): void {
  for (let i = 0; i < records.length; i += 500) rig.sendBatch(hostId, pack(records.slice(i, i + 500)), now)
}

const dir = rulesDir(FOLD_RULES)
t.teardown(dir.cleanup)

for (const [name, o] of Object.entries(SCENARIOS)) {
  t.test(`${name}: the same findings with folding on and off`, async t => {
    const plan = buildPlan({ hostId: 'fold-eq', seed: 7, startTime: 1_800_000_000_000, ...o })
    const off = new EngineRig(dir.dir)
    const on = new EngineRig(dir.dir)
    let end = plan.startTime
    let records = 0
    let folded = 0
    for (const h of plan.hosts) {
      const recs = h.batches.flatMap((b, i) => expandBatch(unpackValue(h.contexts[i]) as LeanContext, unpackValue(b) as unknown[]))
      for (const r of recs) end = Math.max(end, r.time as number)
      const f = foldRecords(recs, WINDOW_MS)
      t.equal(eventsIn(f), recs.length, `${h.hostId}: the folded records stand for every event`)
      records += recs.length
      folded += f.length
      const now = end + 10
      feed(off, h.hostId, recs, now)
      feed(on, h.hostId, f, now)
    }
    off.tick(end + 2000)
    on.tick(end + 2000)
    t.comment(`${records} records, ${folded} folded`)
    const want = outcome(off)
    t.same(outcome(on), want, `${want.length} findings, the same`)
    // a distributed scan's repeats of a port come from another source: another flow
    if ((o.repeat ?? 1) > 1 && o.sources === undefined) t.ok(folded < records, 'folding had repeats to fold')
    if (name.includes('flood')) t.ok(want.some(w => w.includes('test_refused_flood')), 'the event_count rule crossed')
  })
}
