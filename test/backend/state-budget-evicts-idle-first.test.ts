import t from 'tap'
import { DetectionEngine } from '../../backend/detection/engine.js'
import { compileRuleSet } from '../../backend/detection/rules/compile.js'
import { loadRuleDir } from '../../backend/detection/rules/load.js'
import type { FindingEvent } from '../../backend/detection/finding.js'
import { batch, LIMITS, SHIPPED_RULES, type Probe } from './helpers/records.js'

// The memory budget evicts the least recently active state first, whatever
// host or rule it belongs to: a flood from one host pushes out the state of
// hosts that went quiet, not the state of a host still being scanned, and an
// open incident the budget evicts closes with a Close that says why.

const BUDGET = 1024 * 1024

function rig (): { engine: DetectionEngine, findings: FindingEvent[], send: (host: string, probes: Probe[], now: number) => void } {
  const engine = new DetectionEngine(compileRuleSet(loadRuleDir(SHIPPED_RULES)), { limits: LIMITS, productVersion: 'test', memoryBytes: BUDGET })
  const findings: FindingEvent[] = []
  const seqs = new Map<string, number>()
  return {
    engine,
    findings,
    send: (host, probes, now) => {
      const seq = (seqs.get(host) ?? 0) + 1
      seqs.set(host, seq)
      const b = batch(host, probes)
      engine.processBatch({ hostId: host, seq, count: b.count, bytes: b.bytes, context: b.context, recvAt: now }, now)
      findings.push(...engine.drain().findings)
    },
  }
}

const src = (i: number): string => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`

t.test('a flood evicts the quiet hosts\' state, not the active scan\'s, and counts it', async t => {
  const { engine, findings, send } = rig()
  const T = 1_700_000_000_000
  send('quiet', Array.from({ length: 10 }, (_, p) => ({ t: T, src: '198.51.100.1', port: 3000 + p })), T)
  send('scanned', Array.from({ length: 10 }, (_, p) => ({ t: T, src: '198.51.100.2', port: 4000 + p })), T + 1)
  // each flood batch is about a fifth of the budget: the budget holds the last few
  for (let i = 0; i < 40; i++) {
    const now = T + 10 + i
    send('noisy', Array.from({ length: 100 }, (_, k) => ({ t: now, src: src(i * 100 + k), port: 80 })), now)
    // the scan goes on, a new port every other flood batch: long after the
    // flood has pushed out everything as old as the scan's first records
    if (i % 2 === 0 && i < 10) send('scanned', [{ t: now, src: '198.51.100.2', port: 4010 + i / 2 }], now)
  }
  t.ok(engine.stats.stateBytes <= BUDGET, `state ${engine.stats.stateBytes} bytes within the ${BUDGET}-byte budget`)
  t.ok(engine.stats.evictions.value_count > 0, `evictions counted by kind: ${JSON.stringify(engine.stats.evictions)}`)
  const scans = findings.filter(f => f.summary.rule === 'picket_t1046_port_scan' && f.activity === 'create')
  t.equal(scans.length, 1, 'the scan that stayed active crossed')
  t.equal(scans[0]?.summary.hostId, 'scanned')
  t.equal(scans[0]?.summary.portCount, 15, 'with all 15 of its ports: none of its state was evicted')
  send('quiet', Array.from({ length: 5 }, (_, p) => ({ t: T + 100, src: '198.51.100.1', port: 3010 + p })), T + 100)
  t.equal(findings.filter(f => f.summary.hostId === 'quiet').length, 0, 'the quiet host\'s first 10 ports were evicted: 5 more do not cross')
})

t.test('an open incident the budget evicts closes, saying why', async t => {
  const { engine, findings, send } = rig()
  const T = 1_700_000_000_000
  send('victim', Array.from({ length: 20 }, (_, p) => ({ t: T, src: '198.51.100.9', port: 5000 + p })), T)
  t.equal(findings.filter(f => f.activity === 'create').length, 1, 'the incident is open')
  for (let i = 0; i < 40; i++) send('noisy', Array.from({ length: 500 }, (_, k) => ({ t: T + 10 + i, src: src(i * 500 + k), port: 80 })), T + 10 + i)
  const close = findings.find(f => f.activity === 'close' && f.summary.hostId === 'victim')
  t.ok(close !== undefined, 'its Close was emitted')
  t.match((close?.finding.unmapped as { picket: { closed_by?: string } } | undefined)?.picket.closed_by, /detection memory budget/)
  t.ok(engine.stats.evictions.incident >= 1, 'counted as an incident eviction')
  t.equal(engine.stats.openIncidents, 0)
})
