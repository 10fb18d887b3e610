import t from 'tap'
import { join } from 'node:path'
import { createLogger } from '../../shared/logger.js'
import { validateDetectionFinding } from '../../shared/ocsf/schema.js'
import { startBackend, type BackendHandle } from '../../backend/server.js'
import type { StoredFinding } from '../../backend/store/index.js'
import { injectScan, type InjectOptions } from '../../scripts/injector/index.js'
import { tempDir } from './helpers/records.js'

// The backend end to end: a real started backend (gRPC collector, worker
// threads, SQLite store), fed by the injector over real gRPC the way an
// agent ships. Each scenario uses its own host ids.

const tmp = tempDir('picket-ntd-')
t.teardown(tmp.cleanup)

let backend: BackendHandle
t.before(async () => {
  backend = await startBackend({
    listen: '127.0.0.1:0',
    http: '127.0.0.1:0',
    db: join(tmp.dir, 'picket.db'),
    workers: 2,
    console: false,
    logger: createLogger('test-backend', { level: 'error', pretty: false }),
  })
})
t.teardown(async () => { await backend?.close() })

async function inject (o: Omit<InjectOptions, 'collector'>): Promise<Awaited<ReturnType<typeof injectScan>>> {
  const s = await injectScan({ collector: backend.collector.address, seed: 42, ...o })
  await backend.flush()
  return s
}

function findingsFor (host: string): StoredFinding[] {
  return backend.store.listFindings({ host, limit: 500 }).items
}

function picket (f: StoredFinding): { ports_total: number, ports: Array<{ port: number, count: number }>, sources_total: number, hosts_total: number } {
  return (f.finding.unmapped as { picket: ReturnType<typeof picket> }).picket
}

t.test('a 200-port scan from one source gives exactly one T1046 finding with that host, that source and 200 ports', async t => {
  const s = await inject({ hostId: 'ntd-scan', hostname: 'web-1', source: '198.51.100.7', ports: 200 })
  t.equal(s.batches.ok, s.batches.sent, 'every batch acked OK')
  t.equal(s.records.total, 200)
  const found = findingsFor('ntd-scan')
  t.equal(found.length, 1, 'exactly one finding')
  const f = found[0]
  t.equal(f.technique, 'T1046')
  t.equal(f.tactic, 'TA0007')
  t.equal(f.rule, 'picket_t1046_port_scan')
  t.equal(f.hostId, 'ntd-scan')
  t.same(f.sources, ['198.51.100.7'])
  t.equal(f.portCount, 200)
  t.equal(f.records, 200)
  t.equal(f.status, 'new')
  const o = f.finding
  t.equal(o.class_uid, 2004)
  t.equal(o.device?.uid, 'ntd-scan')
  t.equal(o.device?.hostname, 'web-1')
  t.match(o.finding_info.attacks, [{ technique: { uid: 'T1046', name: 'Network Service Discovery' }, tactic: { uid: 'TA0007', name: 'Discovery' } }])
  t.equal(picket(f).ports_total, 200)
  t.equal(picket(f).ports.length, 200)
  t.ok(picket(f).ports.every(p => p.count === 1), 'each port probed once, with its count')
  t.ok(typeof o.finding_info.first_seen_time === 'number' && typeof o.finding_info.last_seen_time === 'number' && o.finding_info.first_seen_time <= o.finding_info.last_seen_time)
  t.ok((o.evidences?.length ?? 0) > 0 && (o.evidences?.length ?? 0) <= 20, 'bounded evidence records')
  t.same(validateDetectionFinding(o), [], 'the stored finding validates against OCSF 1.8.0')
  const hist = backend.store.history(f.id)
  t.equal(hist.length, 1)
  t.equal(hist[0].to, 'new')
})

t.test('the same batches again (same host, same seq) are acked DUPLICATE and counted once', async t => {
  const s = await inject({ hostId: 'ntd-scan', hostname: 'web-1', source: '198.51.100.7', ports: 200 })
  t.equal(s.batches.duplicate, s.batches.sent, 'every resent batch is a duplicate')
  t.equal(s.batches.ok, 0)
  const found = findingsFor('ntd-scan')
  t.equal(found.length, 1)
  t.equal(found[0].records, 200, 'no record counted twice')
})

t.test('a sweep of one port across 30 hosts gives one finding', async t => {
  const s = await inject({ hostId: 'ntd-sweep', source: '198.51.100.8', hosts: 30 })
  t.equal(s.batches.ok, 30, 'one batch per host stream')
  const all = backend.store.listFindings({ source: '198.51.100.8' }).items
  t.equal(all.length, 1, 'one finding for the whole sweep')
  const f = all[0]
  t.equal(f.rule, 'picket_t1046_horizontal_sweep')
  t.equal(f.technique, 'T1046')
  t.equal(f.hostsCount, 30)
  t.equal(f.hostId, null, 'a fleet finding names hosts, not one host')
  t.same(f.sources, ['198.51.100.8'])
  t.equal(f.portCount, 1)
  t.equal(findingsFor('ntd-sweep-0007').length, 1, 'found by any of the swept hosts')
  t.same(validateDetectionFinding(f.finding), [])
})

t.test('a scan spread over 10 sources, 4 ports each, gives one distributed-scan finding', async t => {
  const s = await inject({ hostId: 'ntd-dist', source: '203.0.113.10', sources: 10, ports: 40, openPorts: [] })
  t.equal(s.batches.ok, s.batches.sent)
  const found = findingsFor('ntd-dist')
  t.equal(found.length, 1, 'one finding, and no per-source port scans')
  const f = found[0]
  t.equal(f.rule, 'picket_t1046_distributed_scan')
  t.equal(f.sourcesCount, 10)
  t.equal(f.portCount, 40)
  t.equal(f.hostId, 'ntd-dist')
  t.same(validateDetectionFinding(f.finding), [])
})

t.test('benign traffic gives no finding', async t => {
  // 50 clients on one port
  const web = await inject({ hostId: 'ntd-benign-web', ports: 0, benign: 2000, benignClients: 50, benignPorts: [443] })
  t.equal(web.records.total, 2000)
  t.equal(web.batches.ok, web.batches.sent)
  // one client on 10 well-known ports, three times over
  const known = [22, 25, 53, 80, 110, 143, 443, 993, 995, 3306]
  const k = await inject({ hostId: 'ntd-benign-known', source: '203.0.113.200', portList: known, openPorts: known, repeat: 3 })
  t.equal(k.records.total, 30)
  // a load-balancer health checker on 5 ports, 20 rounds, not on the allow-list
  const hc = [80, 443, 8080, 8443, 9100]
  const h = await inject({ hostId: 'ntd-benign-hc', source: '10.0.0.5', portList: hc, openPorts: hc, repeat: 20 })
  t.equal(h.records.total, 100)
  // and all of it again on one host together
  await inject({ hostId: 'ntd-benign-mixed', source: '10.0.0.6', portList: hc, openPorts: hc, repeat: 10, benign: 1000, benignClients: 50, benignPorts: [443, 80] })
  for (const host of ['ntd-benign-web', 'ntd-benign-known', 'ntd-benign-hc', 'ntd-benign-mixed']) {
    t.same(findingsFor(host).map(f => f.title), [], `no finding for ${host}`)
  }
  t.equal(backend.store.getHost('ntd-benign-web')?.records, 2000, 'the records did arrive')
})

t.test('the whole run: three findings, each stored, logged in metrics and reported healthy', async t => {
  const page = backend.store.listFindings({ technique: 'T1046' })
  t.equal(page.total, 3, 'port scan + sweep + distributed scan')
  t.same(page.items.map(f => f.rule).sort(), ['picket_t1046_distributed_scan', 'picket_t1046_horizontal_sweep', 'picket_t1046_port_scan'])
  const metrics = await (await fetch(`${backend.http?.url ?? ''}/metrics`)).text()
  t.match(metrics, /picket_findings_total\{rule="picket_t1046_port_scan",activity="create"\} 1\n/)
  t.match(metrics, /picket_collector_batches_total\{status="DUPLICATE"\} [1-9]/)
  t.match(metrics, /picket_detection_latency_seconds_count 3\n/, 'a latency sample per created finding')
  t.match(metrics, /picket_collector_zero_copy_batches_total [1-9]/, 'large batches reach the workers without a copy')
  const health = await backend.health()
  t.equal(health.status, 'ok')
  t.equal(health.bridge.workers.length, 2)
  t.ok(health.bridge.workers.every(w => w.alive), 'every worker answers')
})
