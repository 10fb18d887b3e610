import t from 'tap'
import { join } from 'node:path'
import { packValue } from '../../shared/codec.js'
import { createLogger } from '../../shared/logger.js'
import { packLean } from '../../shared/ocsf/lean.js'
import { validateDetectionFinding } from '../../shared/ocsf/schema.js'
import { startBackend, type BackendHandle } from '../../backend/server.js'
import type { StoredFinding } from '../../backend/store/index.js'
import type { FindingEvent } from '../../backend/detection/finding.js'
import { injectScan, type InjectOptions } from '../../scripts/injector/index.js'
import { EngineRig, pack, ports, probeRecord, tempDir, type Probe } from './helpers/records.js'

// Agents from before the lean form send full OCSF maps and no context. The
// collector must still accept them, and the same records must give the same
// findings whichever form they travel in, alone or mixed in one batch:
// through the whole backend (gRPC, workers, store) and through the engine.

const tmp = tempDir('picket-forms-')
t.teardown(tmp.cleanup)

/** Every list in `v` in one order: a fleet finding lists hosts as their sightings arrived from the workers. */
function sorted (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sorted(x)]))
  return v
}

/** A finding without what differs between two runs of the same records: ids and wall-clock times (and, for a fleet finding, arrival order). */
function comparable (f: StoredFinding['finding'], fleet = false): unknown {
  const o = JSON.parse(JSON.stringify(f)) as Record<string, any>
  delete o.time
  for (const k of ['uid', 'correlation_uid', 'logged_time']) delete o.metadata[k]
  for (const k of ['uid', 'created_time', 'modified_time']) delete o.finding_info[k]
  if (!fleet) return o
  delete o.evidences
  // a host's hostname reaches the fleet stage with its sightings, or not yet
  // when the crossing seeded that host: arrival order again
  for (const h of o.unmapped?.picket?.hosts ?? []) delete h.hostname
  return sorted(o)
}

function stored (be: BackendHandle): StoredFinding[] {
  return be.store.listFindings({ limit: 500 }).items.sort((a, b) => `${a.rule}|${a.hostId ?? ''}|${a.sources.join()}`.localeCompare(`${b.rule}|${b.hostId ?? ''}|${b.sources.join()}`))
}

t.test('old-form batches are accepted and give the same stored findings as the same records in the lean form', async t => {
  const start = Date.now() - 60_000
  const scenarios: Array<Omit<InjectOptions, 'collector'>> = [
    { hostId: 'forms-scan', hostname: 'web-1', source: '198.51.100.7', ports: 200, benign: 300 },
    { hostId: 'forms-udp', source: '198.51.100.8', ports: 40, udp: true },
    { hostId: 'forms-dist', source: '198.51.100.20', sources: 10, ports: 40 },
    { hostId: 'forms-sweep', source: '198.51.100.30', hosts: 30 },
    { hostId: 'forms-benign', ports: 0, benign: 1000 },
  ]
  const run = async (wire: 'lean' | 'full'): Promise<StoredFinding[]> => {
    const be = await startBackend({
      listen: '127.0.0.1:0',
      db: join(tmp.dir, `${wire}.db`),
      workers: 2,
      console: false,
      logger: createLogger(`test-forms-${wire}`, { level: 'error', pretty: false }),
    })
    try {
      for (const s of scenarios) {
        const r = await injectScan({ collector: be.collector.address, seed: 7, startTime: start, batchSize: 100, wire, ...s })
        t.equal(r.batches.ok, r.batches.sent, `${wire} ${s.hostId}: every batch acked OK`)
      }
      // the sweep's finding is the fleet stage's, updated at most once a second: wait for all 30 hosts
      const deadline = Date.now() + 15_000
      do {
        await be.flush()
        await new Promise(resolve => setTimeout(resolve, 100))
      } while (Date.now() < deadline && stored(be).find(f => f.rule === 'picket_t1046_horizontal_sweep')?.hostsCount !== 30)
      return stored(be)
    } finally {
      await be.close()
    }
  }
  const full = await run('full')
  const lean = await run('lean')
  t.same(full.map(f => `${f.rule} ${f.hostId ?? '(fleet)'}`), [
    'picket_t1046_distributed_scan forms-dist',
    'picket_t1046_horizontal_sweep (fleet)',
    'picket_t1046_port_scan forms-scan',
    'picket_t1046_port_scan forms-udp',
  ], 'the full form finds what the scenarios hold')
  t.equal(lean.length, full.length, 'the lean form finds as many')
  full.forEach((f, i) => {
    const l = lean[i]
    const fleet = f.hostId === null
    const same = (x: StoredFinding): unknown => ({ ...x, id: '', createdAt: 0, updatedAt: 0, changeSeq: 0, hosts: [...x.hosts].sort(), finding: comparable(x.finding, fleet) })
    t.same(same(l), same(f), `${f.rule} ${f.hostId ?? '(fleet)'}: the same finding, ${fleet ? 'but for its evidence and the order of its lists, which follow arrival across hosts' : 'evidence and all'}`)
    t.same(validateDetectionFinding(l.finding), [], 'and it validates against OCSF 1.8.0')
  })
  const ev = lean.find(f => f.hostId === 'forms-scan')?.finding.evidences?.[0] as Record<string, any> | undefined
  t.match(ev, { device: { uid: 'forms-scan', hostname: 'web-1', type_id: 1, type: 'Server' }, connection_info: { direction_id: 1, direction: 'Inbound', protocol_num: 6, protocol_name: 'tcp' }, data: { class_uid: 4001 } },
    'the evidence shows what the expanded records say, the shared device included')
})

t.test('the engine gives the same findings for both forms, and for both mixed in one batch', async t => {
  const T0 = Date.now()
  const probes = (src: string, n: number, from = 1000, at = T0): Probe[] => ports(n, from).map((port, i) => ({ t: at + i, src, port }))
  const records = [...probes('198.51.100.1', 30), ...probes('198.51.100.2', 10, 5000), ...probes('198.51.100.3', 20, 8000, T0 + 100)].map(p => probeRecord('mix', p))
  const mixed = (): { bytes: Buffer, context: Buffer, count: number } => {
    // every other record as a full map in the lean batch: one array, both forms
    const lean = packLean(records.filter((_, i) => i % 2 === 0) as unknown as Array<Record<string, unknown>>)
    const all: unknown[] = []
    let k = 0
    records.forEach((r, i) => all.push(i % 2 === 0 ? lean.records[k++] : r))
    return { bytes: packValue(all), context: packValue(lean.context), count: all.length }
  }
  const findings = (b: { bytes: Buffer, context: Buffer, count: number }): unknown[] => {
    const rig = new EngineRig()
    t.same(rig.sendBatch('mix', b, T0), { status: 'accepted', records: records.length })
    rig.engine.flush(T0 + 1000)
    const out: FindingEvent[] = [...rig.findings, ...rig.engine.drain().findings]
    return out.map(f => ({ activity: f.activity, summary: { ...f.summary, id: '' }, finding: comparable(f.finding) }))
  }
  const full = findings(pack(records, 'full'))
  t.equal(full.length > 0, true, 'the records make findings')
  t.same(findings(pack(records, 'lean')), full, 'lean: the same findings')
  t.same(findings(mixed()), full, 'lean and full records in one batch: the same findings')
})
