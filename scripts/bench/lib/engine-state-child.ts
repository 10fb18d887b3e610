import { DetectionEngine } from '../../../backend/detection/engine.js'
import { compileRuleSet } from '../../../backend/detection/rules/compile.js'
import { loadRuleDir } from '../../../backend/detection/rules/load.js'
import { DEFAULT_LIMITS } from '../../../backend/limits.js'
import { rootPath } from '../../../shared/paths.js'
import { benignBatch, hostId, type Packed } from './fleet.js'

// Run with --expose-gc (engine-state.ts does): the detection engine's heap per
// host once a host's sliding window is full of ordinary traffic. Each host
// gets `records` records (the scale benchmark's trickle for a whole 5-minute
// window) drawn from the injector's benign traffic: 50 clients on 3 ports.

const { hosts, records, perBatch } = JSON.parse(process.argv[2] ?? '{}') as { hosts: number, records: number, perBatch: number }
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('engine-state-child needs --expose-gc')
const rules = compileRuleSet(loadRuleDir(rootPath('backend', 'rules')))
const engine = new DetectionEngine(rules, { limits: DEFAULT_LIMITS, productVersion: 'bench' })
const batches = Math.ceil(records / perBatch)
const ids = Array.from({ length: hosts }, (_, i) => hostId('state', i, 6))
const now = Date.now()
// one host's batches at a time, so the batches' bytes are not counted as state
gc()
const before = process.memoryUsage().heapUsed
for (let h = 0; h < hosts; h++) {
  const bs: Packed[] = Array.from({ length: batches }, (_, k) => benignBatch(ids[h], perBatch, h * 100_000 + k + 1, now))
  bs.forEach((b, k) => { engine.processBatch({ hostId: ids[h], seq: k + 1, count: b.count, bytes: b.bytes, context: b.context, recvAt: now }, now) })
  engine.drain()
}
gc()
const after = process.memoryUsage().heapUsed
process.send?.({ bytesPerHost: (after - before) / hosts, findings: engine.stats.findings, hosts: engine.stats.hosts })
