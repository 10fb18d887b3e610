import t from 'tap'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { packRecords } from '../../shared/codec.js'
import { AlertStore } from '../../backend/store/index.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { startBackendProc, type BackendProc } from '../../scripts/bench/lib/backend.js'
import { mib, rssPeak } from './helpers/rss.js'
import { probeRecord, SHIPPED_RULES, tempDir } from './helpers/records.js'

// Defect 6: an open incident grew without bound, and its ports were not
// checked: 300,000 distinct string "ports" grew RSS by 406 MB and the finding
// said portCount 300,020. Now an incident's ports are a 65,536-bit set with
// stats for a bounded sample, and a value that is not an integer from 0 to
// 65535 never enters it. Here one source's port scan of one host opens the
// incident, then 300,000 more records go to it: valid ports cycling through
// 0..65535, and (in batches of their own, which record validation at the
// projector may refuse whole) strings, fractions and out-of-range numbers.
// Only the port-scan rule and its detection rules run, so the worker's state
// is the incident (the refused-probe rule, consumed by no correlation here,
// gives a finding of its own, left aside).

const VALID = 240_000
const INVALID = 60_000
const PER_BATCH = 10_000
/**
 * What the worker's state may cost, by budget.ts's estimates: two open
 * incidents (the port scan, and the refused-probe rule's own), each at most
 * 132 KiB (its 8 KiB bitset, stats for 1,100 sampled ports, its evidence and
 * small maps), the host's actor included.
 */
const STATE_BOUND = 2 * 132 * 1024
/** RSS growth: the incident is small; this is V8's headroom for the 300,000 records' garbage */
const RSS_GROWTH = 160 * 1024 * 1024


const rules = tempDir('picket-port-flood-rules-')
t.teardown(rules.cleanup)
for (const f of ['net_inbound_probe.yml', 't1046_port_scan.yml', 'allowlist.yml']) copyFileSync(join(SHIPPED_RULES, f), join(rules.dir, f))

let backend: BackendProc
t.before(async () => { backend = await startBackendProc({ workers: 2, backend: { rulesDir: rules.dir } }) })
t.teardown(async () => { await backend?.stop() })

const HOST = 'port-flood'
const SRC = '198.51.100.66'

function weird (i: number): unknown {
  switch (i % 4) {
    case 0: return `p${i}`
    case 1: return (i % 65536) + 0.5
    case 2: return 65536 + i
    default: return -1 - i
  }
}

t.test('300,000 distinct "ports" into one open incident: portCount exact and at most 65,536, state bounded', async t => {
  const client = connectCollector(backend.address)
  t.teardown(() => client.close())
  await new Promise(resolve => setTimeout(resolve, 1000))
  const rss = rssPeak(backend.pid)
  t.teardown(rss.stop)

  const s = new AgentStream(client, HOST)
  const now = Date.now()
  const scan = Array.from({ length: 20 }, (_, p) => probeRecord(HOST, { t: now, src: SRC, port: 1000 + p }))
  t.equal((await s.send(packRecords(scan), scan.length)).status, 'OK', 'a 20-port scan opens the incident')

  for (let i = 0; i < VALID; i += PER_BATCH) {
    const recs = Array.from({ length: PER_BATCH }, (_, k) => {
      const r = probeRecord(HOST, { t: now + 1 + (i + k) / 1000, src: SRC, port: 1 })
      // set here: the record builder leaves port 0 out, as the agent does
      ;(r.dst_endpoint as { port: unknown }).port = (i + k) % 65536
      return r
    })
    t.equal((await s.send(packRecords(recs), recs.length)).status, 'OK', `valid ports ${i % 65536}…`)
  }
  let invalidAccepted = 0
  for (let i = 0; i < INVALID; i += PER_BATCH) {
    const recs = Array.from({ length: PER_BATCH }, (_, k) => {
      const r = probeRecord(HOST, { t: now + 300 + (i + k) / 1000, src: SRC, port: 1 })
      ;(r.dst_endpoint as { port: unknown }).port = weird(i + k)
      return r
    })
    const ack = await s.send(packRecords(recs), recs.length)
    if (ack.status === 'OK') invalidAccepted += recs.length
  }
  t.comment(`${invalidAccepted} of ${INVALID} records with an invalid port got past record validation`)
  await s.end()
  await backend.flush()

  const h = await backend.health()
  const worker = h.bridge.workers.find(w => (w.stats?.records ?? 0) > 0)
  t.ok((worker?.stats?.stateBytes ?? Infinity) <= STATE_BOUND, `the worker's state, two open incidents, is ${worker?.stats?.stateBytes ?? '?'} bytes, within ${STATE_BOUND}`)
  const peak = rss.peak()
  t.ok(peak - rss.idle <= RSS_GROWTH, `backend RSS grew ${mib(peak - rss.idle)} at most (idle ${mib(rss.idle)}, peak ${mib(peak)}), within ${mib(RSS_GROWTH)}`)

  const store = AlertStore.open(backend.db, { readonly: true })
  t.teardown(() => store.close())
  const found = store.listFindings({ host: HOST, rule: 'picket_t1046_port_scan' }).items
  t.equal(found.length, 1, 'one incident, one finding')
  const f = found[0]
  t.equal(f.portCount, 65_536, 'portCount: every port from 0 to 65535, each once, nothing else')
  const picket = (f.finding.unmapped as { picket: { ports_total: number, ports: Array<{ port: number, count: number }>, invalid_ports?: number, records_total: number } }).picket
  t.equal(picket.ports_total, 65_536)
  t.ok(picket.ports.length <= 1000, `the finding lists a bounded sample of ports (${picket.ports.length})`)
  t.ok(picket.ports.every((p, i) => Number.isInteger(p.port) && p.port >= 0 && p.port <= 65535 && (i === 0 || p.port > picket.ports[i - 1].port)), 'valid ports, in order')
  t.equal(picket.ports.find(p => p.port === 1000)?.count, 1 + Math.floor(VALID / 65536) + (VALID % 65536 > 1000 ? 1 : 0), 'a sampled port\'s count is exact')
  t.equal(picket.invalid_ports ?? 0, invalidAccepted, 'the values that are no port are counted apart')
  t.equal(picket.records_total, 20 + VALID + invalidAccepted, 'every record counted')
})
