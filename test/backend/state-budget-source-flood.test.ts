import t from 'tap'
import { packRecords } from '../../shared/codec.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { startBackendProc, type BackendProc } from '../../scripts/bench/lib/backend.js'
import { mib, rssPeak } from './helpers/rss.js'
import { probeRecord } from './helpers/records.js'

// Defect 5: state was capped per host and per rule, never in total, and the
// fleet stage not at all: 100,000 sources against one host grew the backend's
// RSS by 357 MB. Now all correlation state of a worker (every host, rule and
// kind) sits under one memory budget, and the fleet stage under one of its
// own; the least recently active state is evicted and counted. Here the
// budget is 16 MiB, the 100,000 sources each probe the one host once (a
// port-scan group, a distributed-scan source and a sweep sighting each, and
// a fleet group on the main thread), and afterwards another host's scan still
// gives its finding.

const SOURCES = 100_000
const PER_BATCH = 10_000
const BUDGET = 16 * 1024 * 1024
/**
 * The bound on the backend's RSS growth: the two budgets (the victim's
 * worker, the fleet stage) and V8's headroom. The live state stays under the
 * budgets (the stats say so), but V8 collects a flood's garbage lazily: up to
 * ~128 MiB in each busy isolate (the victim's worker, the main thread) before
 * a full collection. Unbounded, the same flood grew RSS by ~370 MiB.
 */
const RSS_GROWTH = 2 * BUDGET + 2 * 128 * 1024 * 1024


function counter (text: string, name: string, labels: string): number {
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}

let backend: BackendProc
t.before(async () => { backend = await startBackendProc({ workers: 2, backend: { detectionMemory: BUDGET } }) })
t.teardown(async () => { await backend?.stop() })

t.test('100,000 sources against one host: state stays under its budget, evictions counted, RSS bounded', async t => {
  const client = connectCollector(backend.address)
  t.teardown(() => client.close())
  await new Promise(resolve => setTimeout(resolve, 1000))
  const rss = rssPeak(backend.pid)
  t.teardown(rss.stop)

  const victim = new AgentStream(client, 'victim')
  const now = Date.now()
  for (let i = 0; i < SOURCES; i += PER_BATCH) {
    const recs = []
    for (let j = i; j < i + PER_BATCH; j++) recs.push(probeRecord('victim', { t: now + j / 100, src: `10.${(j >> 16) & 255}.${(j >> 8) & 255}.${j & 255}`, port: 1000 + (j % 7) }))
    t.equal((await victim.send(packRecords(recs), recs.length)).status, 'OK')
  }
  await victim.end()
  await backend.flush()
  await new Promise(resolve => setTimeout(resolve, 1500))

  const h = await backend.health()
  const worker = h.bridge.workers.find(w => (w.stats?.records ?? 0) >= SOURCES)
  t.ok(worker?.stats !== undefined, 'the victim\'s worker reports its stats')
  const s = worker?.stats
  t.equal(s?.budgetBytes, BUDGET, 'with its budget')
  t.ok((s?.stateBytes ?? Infinity) <= BUDGET, `its state (${mib(s?.stateBytes ?? 0)}) stays under the ${mib(BUDGET)} budget`)
  t.ok((s?.evictions.value_count ?? 0) > 0 && (s?.evictions.distributed ?? 0) > 0 && (s?.evictions.fleet_local ?? 0) > 0, `it evicted port-scan groups, distributed-scan sources and sweep sightings: ${JSON.stringify(s?.evictions)}`)
  const fleet = h.detection.fleet
  t.ok(fleet.stateBytes <= BUDGET, `the fleet stage (${mib(fleet.stateBytes)}) stays under its budget`)
  t.ok(fleet.evictions.fleet_group > 0, `and evicted fleet groups: ${fleet.evictions.fleet_group}`)

  const text = await backend.metrics()
  for (const kind of ['value_count', 'distributed', 'fleet_local', 'fleet_group']) {
    t.ok(counter(text, 'picket_detection_state_evictions_total', `kind="${kind}"`) > 0, `picket_detection_state_evictions_total{kind="${kind}"} counts them`)
  }
  const peak = rss.peak()
  t.ok(peak - rss.idle <= RSS_GROWTH, `backend RSS grew ${mib(peak - rss.idle)} at most (idle ${mib(rss.idle)}, peak ${mib(peak)}), within ${mib(RSS_GROWTH)}`)

  const other = new AgentStream(client, 'bystander')
  const scan = Array.from({ length: 20 }, (_, p) => probeRecord('bystander', { t: Date.now(), src: '198.51.100.77', port: 2000 + p }))
  t.equal((await other.send(packRecords(scan), scan.length)).status, 'OK')
  await other.end()
  await backend.flush()
  const found = (await backend.findings()).filter(f => f.host === 'bystander' && f.rule === 'picket_t1046_port_scan')
  t.equal(found.length, 1, 'another host\'s scan still gives its one finding')
})
