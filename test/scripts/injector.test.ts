import t from 'tap'
import { unpackRecords, unpackValue } from '../../shared/codec.js'
import { expandBatch, type LeanContext } from '../../shared/ocsf/lean.js'
import { validateNetworkActivity } from '../../shared/ocsf/schema.js'
import { TestCollector } from '../helpers/collector.js'
import { AgentStream, buildPlan, connectCollector, formatSummary, injectScan, nthAddress } from '../../scripts/injector/index.js'

// The injector: deterministic seeded records shaped like the agent's, and an
// agent's behaviour on the wire (seq from 1, acks, RETRY, REFUSED, reconnects).

type Rec = Record<string, any>
const START = 1_800_000_000_000

/** The plan's records as full OCSF objects (shared/ocsf/lean.ts expandBatch, the one meaning of a lean batch). */
function recordsOf (plan: ReturnType<typeof buildPlan>): Rec[] {
  return plan.hosts.flatMap(h => h.batches.flatMap((b, i) => expandBatch(unpackValue(h.contexts[i]) as LeanContext, unpackRecords(b)) as Rec[]))
}

t.test('the same options and seed give the same bytes; another seed gives other ports', async t => {
  const o = { ports: 200, benign: 300, hosts: 2, seed: 11, startTime: START }
  const a = buildPlan(o)
  const b = buildPlan(o)
  t.same(a.hosts.map(h => h.batches.map(x => x.toString('hex'))), b.hosts.map(h => h.batches.map(x => x.toString('hex'))), 'byte for byte')
  const c = buildPlan({ ...o, seed: 12 })
  t.notSame(a.ports, c.ports)
  t.equal(new Set(a.ports).size, 200, '200 distinct ports')
  t.ok(a.ports.every(p => p >= 1 && p <= 1024))
  t.equal(buildPlan({ ports: 5000, seed: 1, startTime: START }).ports.length, 5000)
})

t.test('records are OCSF network_activity, shaped like the agent\'s', async t => {
  const tcp = recordsOf(buildPlan({ ports: 40, benign: 10, seed: 2, startTime: START, hostId: 'inj-1', hostname: 'web-1' }))
  const udp = recordsOf(buildPlan({ ports: 5, udp: true, seed: 2, startTime: START }))
  const all = [...tcp, ...udp]
  for (const r of all) {
    const errors = validateNetworkActivity(r)
    if (errors.length > 0) t.fail(`invalid record: ${errors.join('; ')}`)
  }
  t.pass(`${all.length} records validate against OCSF 1.8.0`)
  const refuse = tcp.find(r => r.activity_id === 5) as Rec
  t.match(refuse, {
    class_uid: 4001, type_uid: 400105, activity_name: 'Refuse',
    connection_info: { direction_id: 1, protocol_num: 6, protocol_name: 'tcp' },
    src_endpoint: { ip: '198.51.100.7' },
    device: { uid: 'inj-1', hostname: 'web-1' },
    status_detail: 'TCP RST sent: no socket listening (NO_SOCKET)',
    metadata: { version: '1.8.0', product: { name: 'Picket' } },
  })
  t.equal(refuse.dst_endpoint.ip, '10.77.0.1', 'dst_endpoint is this host')
  const open = tcp.find(r => r.activity_id === 1 && r.src_endpoint.ip === '198.51.100.7')
  t.ok(open === undefined || [22, 80, 443].includes(open.dst_endpoint.port), 'probes of open ports are Open')
  const benign = tcp.filter(r => r.src_endpoint.ip.startsWith('203.0.113.'))
  t.equal(benign.length, 10)
  t.same([...new Set(benign.map(r => r.activity_id))].sort(), [1, 2], 'benign connections open and close')
  t.match(udp[0], { activity_id: 5, connection_info: { protocol_num: 17 }, status_detail: /ICMP destination unreachable/ })
  t.equal(recordsOf(buildPlan({ ports: 3, source: '2001:db8::10', seed: 1, startTime: START }))[0].connection_info.protocol_ver_id, 6, 'an IPv6 source gives IPv6 records')
})

t.test('patterns: a scan, a sweep, a distributed scan, and what to expect of each', async t => {
  const scan = buildPlan({ ports: 200, seed: 1, startTime: START })
  t.equal(scan.hosts.length, 1)
  t.equal(scan.hosts[0].records, 200)
  t.same(scan.expected, ['1 port-scan finding (one per scanned host and source)'])
  const sweep = buildPlan({ hosts: 30, seed: 1, startTime: START, hostId: 'sw' })
  t.equal(sweep.hosts.length, 30)
  t.same(sweep.ports, [3389], 'one closed port')
  t.equal(sweep.hosts[5].hostId, 'sw-0006')
  t.ok(recordsOf(sweep).every(r => r.activity_id === 5 && r.dst_endpoint.port === 3389 && r.src_endpoint.ip === '198.51.100.7'))
  t.same(sweep.expected, ['1 horizontal-sweep finding (one per source)'])
  const dist = buildPlan({ sources: 10, ports: 40, seed: 1, startTime: START })
  const bySource = new Map<string, Set<number>>()
  for (const r of recordsOf(dist)) {
    const s = bySource.get(r.src_endpoint.ip) ?? new Set<number>()
    s.add(r.dst_endpoint.port)
    bySource.set(r.src_endpoint.ip, s)
  }
  t.equal(bySource.size, 10)
  t.ok([...bySource.values()].every(s => s.size === 4), 'each source probes 4 ports, under the single-source threshold')
  t.equal(nthAddress('198.51.100.250', 10), '198.51.101.4')
  t.equal(nthAddress('2001:db8::ff', 1), '2001:db8::100')
  t.match(dist.expected.join(), /distributed-scan/)
  t.same(buildPlan({ ports: 0, benign: 100, seed: 1, startTime: START }).expected, ['no finding (under every threshold)'])
  t.throws(() => buildPlan({ source: 'not-an-ip' }), /not an IP address/)
})

t.test('pacing: --rate spreads records over time and batches as an agent flushes (about 100 ms)', async t => {
  const plan = buildPlan({ ports: 0, benign: 600, rate: 2000, seed: 1, startTime: START })
  const h = plan.hosts[0]
  t.ok(h.batches.length >= 3, `${h.batches.length} batches for 300 ms of traffic`)
  t.ok(h.due[h.due.length - 1] >= 250, 'the last batch is due about 300 ms in')
  const recs = recordsOf(plan)
  t.equal(recs[recs.length - 1].time - recs[0].time, 299, '2000 records/s: 600 records span 300 ms')
  const collector = await TestCollector.start()
  t.teardown(() => collector.close())
  const s = await injectScan({ collector: collector.address, ports: 0, benign: 600, rate: 2000, seed: 1 })
  t.ok(s.elapsedMs >= 250, `shipping took ${s.elapsedMs} ms`)
  t.equal(collector.acceptedRecords, 600)
})

t.test('on the wire: seq from 1, one stream per host, RETRY resent, REFUSED counted, DUPLICATE reported', async t => {
  const collector = await TestCollector.start({ mode: 'retry', retry: b => b.seq === 2 })
  t.teardown(() => collector.close())
  const s = await injectScan({ collector: collector.address, hostId: 'wire', ports: 100, batchSize: 25, seed: 4 })
  t.equal(s.batches.sent, 4)
  t.equal(s.batches.ok, 4)
  t.equal(s.batches.retried, 1, 'the RETRY batch was sent again')
  t.same(collector.accepted.map(b => b.seq).sort((a, b) => a - b), [1, 2, 3, 4], 'seq 1 to 4, each accepted once')
  t.ok(collector.accepted.every(b => b.host_id === 'wire' && b.hostname === 'wire' && b.count === 25))
  t.equal(collector.arrivals.length, 5)

  collector.mode = 'refuse'
  collector.refuse = b => b.seq === 1
  const r = await injectScan({ collector: collector.address, hostId: 'wire-2', ports: 40, batchSize: 20, seed: 4 })
  t.equal(r.batches.refused, 1)
  t.same(r.refusedByLimit, { max_batch_records: 1 })
  t.match(formatSummary(r), /refused\s+1 × max_batch_records: PICKET_ERR_LIMIT batch over max_batch_records \(test\)/)

  collector.mode = 'ack'
  const d = await injectScan({ collector: collector.address, hostId: 'wire', ports: 100, batchSize: 25, seed: 4 })
  t.equal(d.batches.duplicate, 4, 'the same host and seqs again are duplicates')
  t.match(formatSummary(d), /already accepted 4 of these \(host id, seq\) pairs/)
})

t.test('a broken stream is reopened and unacked batches are resent in order', async t => {
  const collector = await TestCollector.start({ mode: 'stall' })
  t.teardown(() => collector.close())
  const client = connectCollector(collector.address)
  t.teardown(() => client.close())
  const plan = buildPlan({ ports: 60, batchSize: 20, seed: 8, hostId: 'rc' })
  const stream = new AgentStream(client, 'rc', { window: 8 })
  const acks = plan.hosts[0].batches.map((b, i) => stream.send(b, plan.hosts[0].counts[i], plan.hosts[0].counts[i], plan.hosts[0].contexts[i]))
  await collector.waitFor(() => collector.arrivals.length === 3, 10_000, 'three batches to arrive')
  await collector.kill()
  collector.mode = 'ack'
  await collector.listen()
  const results = await Promise.all(acks)
  // the collector had taken them before the outage and answers DUPLICATE: safe to forget
  t.same(results.map(a => a.status), ['DUPLICATE', 'DUPLICATE', 'DUPLICATE'])
  t.ok(stream.stats.reconnects >= 1, 'reconnected')
  t.same(collector.arrivals.map(b => b.seq), [1, 2, 3, 1, 2, 3], 'every unacked batch resent, in order')
  t.same(collector.accepted.map(b => b.seq), [1, 2, 3], 'each accepted once')
  await stream.end()
})
