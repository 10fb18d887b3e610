import t from 'tap'
import { join } from 'node:path'
import { PicketError } from '../../shared/errors.js'
import { createLogger } from '../../shared/logger.js'
import { CLASS } from '../../shared/ocsf/constants.js'
import type { FindingEvent } from '../../backend/detection/finding.js'
import { compileRuleSet } from '../../backend/detection/rules/compile.js'
import { loadRuleDir } from '../../backend/detection/rules/load.js'
import { startBackend } from '../../backend/server.js'
import { injectScan } from '../../scripts/injector/index.js'
import { EngineRig, pack, ports, probeRecord, rulesDir, tempDir } from './helpers/records.js'

// ADR 044: one union of event classes on the wire, and each rule reads the
// class its logsource.category names. A batch that mixes process_activity
// records into network traffic must leave the network rules' findings as they
// were, and nothing of a process record may reach them: not its values, not
// the checks on the fields they read.

const EXTRA = {
  'class-probes.yml': `
title: Anything on port 31337
name: test_port_31337
logsource: {category: network_connection}
detection:
  selection:
    dst_endpoint.port: 31337
  condition: selection
level: high
---
title: netcat started
name: test_netcat
logsource: {category: process_creation}
detection:
  selection:
    process.name: nc
  condition: selection
level: high
`,
}

const T0 = Date.now()

/** A process_activity record whose other fields would match, or break, the network rules if they saw them. */
function processRecord (host: string, i: number, name: string): Record<string, unknown> {
  return {
    class_uid: CLASS.PROCESS_ACTIVITY.uid,
    activity_id: 1,
    time: T0 + i,
    severity_id: 1,
    device: { type_id: 1, uid: host, hostname: host },
    metadata: { version: '1.8.0', product: { name: 'Picket', vendor_name: 'Picket', version: 'test' } },
    process: { pid: 4000 + i, name },
    // not a process_activity field: a record of another class that shares a path must not reach the network rules
    src_endpoint: { ip: 'not-an-ip', port: 99999 },
    dst_endpoint: { ip: '10.9.0.1', port: 31337 },
    connection_info: { direction_id: 1, protocol_num: 6 },
  }
}

function summarize (rig: EngineRig): unknown[] {
  rig.engine.flush(T0 + 10_000)
  const out: FindingEvent[] = [...rig.findings, ...rig.engine.drain().findings]
  return out.map(f => ({ rule: f.summary.rule, activity: f.activity, records: f.summary.records, sources: f.summary.sources, ports: f.summary.portCount, evidences: f.finding.evidences }))
}

t.test('a process record mixed into network traffic changes no network finding and reaches no network rule', async t => {
  const rules = rulesDir(EXTRA)
  t.teardown(rules.cleanup)
  const network = [
    ...ports(20).map((port, i) => probeRecord('mixed', { t: T0 + i, src: '198.51.100.5', port })),
    probeRecord('mixed', { t: T0 + 50, src: '198.51.100.6', port: 31337 }),
  ] as unknown as Array<Record<string, unknown>>
  const processes = [processRecord('mixed', 60, 'bash'), processRecord('mixed', 61, 'nc'), processRecord('mixed', 62, 'sh')]
  for (const wire of ['lean', 'full'] as const) {
    const alone = new EngineRig(rules.dir)
    t.same(alone.sendBatch('mixed', pack(network, wire), T0), { status: 'accepted', records: network.length })
    const mixed = new EngineRig(rules.dir)
    const both = [...network.slice(0, 10), processes[0], ...network.slice(10), processes[1], processes[2]]
    t.same(mixed.sendBatch('mixed', pack(both, wire), T0), { status: 'accepted', records: both.length },
      `${wire}: accepted: the process records' src_endpoint.ip 'not-an-ip' and port 99999 are not checked, no rule of their class reads them`)
    const before = summarize(alone).filter(f => (f as { rule: string }).rule !== 'test_netcat')
    const after = summarize(mixed)
    t.same(after.filter(f => (f as { rule: string }).rule !== 'test_netcat'), before, `${wire}: the network findings are unchanged, evidence and all`)
    t.equal(after.filter(f => (f as { rule: string }).rule === 'test_port_31337').length, 1, `${wire}: port 31337 raised once, for the network record; the process records on that port were not seen`)
    const nc = after.filter(f => (f as { rule: string }).rule === 'test_netcat') as Array<{ records: number }>
    t.same(nc.map(f => f.records), [1], `${wire}: the process rule saw its one process record, and no network record`)
  }
})

t.test('a rule names its class in logsource.category', async t => {
  const compile = (text: string): string => {
    const rules = rulesDir({ 'x.yml': text }, false)
    try {
      const set = compileRuleSet(loadRuleDir(rules.dir))
      return set.detections.map(d => `${d.ref}:${d.classUid}`).join(',')
    } catch (err) {
      return err instanceof PicketError ? err.message : String(err)
    } finally {
      rules.cleanup()
    }
  }
  const rule = (category: string | undefined, name = 'r'): string => `title: ${name}\nname: ${name}\nlogsource: {${category !== undefined ? `category: ${category}, ` : ''}product: picket}\ndetection:\n  sel: {activity_id: 1}\n  condition: sel\n`
  t.equal(compile(rule('network_connection')), 'r:4001', 'Sigma network_connection is network_activity')
  t.equal(compile(rule('network_activity')), 'r:4001', 'so is the OCSF class name')
  t.equal(compile(rule('process_creation')), 'r:1007')
  t.equal(compile(rule('file_event')), 'r:1001')
  t.equal(compile(rule('file_rename')), 'r:1001', 'every file_* category is file_activity')
  t.equal(compile(rule('dns_query')), 'r:4003')
  t.equal(compile(rule('dns')), 'r:4003')
  t.match(compile(rule('registry_set')), /x\.yml:3: logsource\.category 'registry_set' names no event class Picket routes records by; use network_connection, /)
  t.match(compile(rule('constructor')), /logsource\.category 'constructor' names no event class/)
  t.match(compile(rule(undefined)), /logsource\.category is missing: it names the event class the rule reads/)
  const filter = `title: f\nlogsource: {category: process_creation}\nfilter:\n  rules: [r]\n  sel: {activity_id: 2}\n  condition: not sel\n`
  t.match(compile(`${rule('network_connection')}---\n${filter}`), /'r' reads class 4001 records but this filter's logsource is class 1007; a filter applies to rules of its own class/)
})

t.test('a rule that reads a caption matches lean records, which leave captions out, as it matches full ones', async t => {
  const captions: Array<[string, string | number]> = [
    ['activity_name', 'Refuse'],
    ['class_name', 'Network Activity'],
    ['category_name', 'Network Activity'],
    ['category_uid', 4],
    ['type_uid', 400105],
    ['type_name', 'Network Activity: Refuse'],
    ['severity', 'Informational'],
    ['connection_info.direction', 'Inbound'],
    ['connection_info.protocol_name', 'tcp'],
    ['connection_info.protocol_ver', 'Internet Protocol version 4 (IPv4)'],
    ['device.type', 'Server'],
  ]
  const text = captions.map(([path, value], i) => `title: caption ${i}\nname: test_caption_${i}\nlogsource: {category: network_connection}\ndetection:\n  sel: {${path}: ${JSON.stringify(value)}}\n  condition: sel\nlevel: low\n`).join('---\n')
  const rules = rulesDir({ 'captions.yml': text }, false)
  t.teardown(rules.cleanup)
  const records = ports(3).map((port, i) => probeRecord('cap', { t: T0 + i, src: '198.51.100.9', port })) as unknown as Array<Record<string, unknown>>
  // a record whose own caption differs from the schema's keeps it, in both forms: it does not match
  const own = { ...records[2], activity_name: 'Refused by policy' }
  const fired = (wire: 'lean' | 'full'): Record<string, number> => {
    const rig = new EngineRig(rules.dir)
    t.same(rig.sendBatch('cap', pack([records[0], records[1], own], wire), T0), { status: 'accepted', records: 3 })
    rig.engine.flush(T0 + 10_000)
    const out: FindingEvent[] = [...rig.findings, ...rig.engine.drain().findings]
    const seen: Record<string, number> = {}
    for (const f of out) seen[f.summary.rule] = Math.max(seen[f.summary.rule] ?? 0, f.summary.records)
    return seen
  }
  const full = fired('full')
  t.same(full, Object.fromEntries(captions.map(([path], i) => [`test_caption_${i}`, path === 'activity_name' ? 2 : 3])), 'full form: each caption rule matches (activity_name not on the record that says otherwise)')
  t.same(fired('lean'), full, 'lean form: the same matches')
})

t.test('through the whole backend: the workers get the captions the main thread found', async t => {
  const rules = rulesDir({ 'caption.yml': 'title: refusals by name\nname: test_refused_by_name\nlogsource: {category: network_connection}\ndetection:\n  sel: {activity_name: Refuse, connection_info.protocol_name: udp}\n  condition: sel\nlevel: low\n' })
  const tmp = tempDir('picket-captions-')
  t.teardown(() => { rules.cleanup(); tmp.cleanup() })
  const be = await startBackend({ listen: '127.0.0.1:0', db: join(tmp.dir, 'picket.db'), workers: 2, console: false, rulesDir: rules.dir, logger: createLogger('test-captions', { level: 'error', pretty: false }) })
  t.teardown(be.close)
  const s = await injectScan({ collector: be.collector.address, hostId: 'cap-udp', ports: 5, udp: true, seed: 3 })
  t.equal(s.batches.ok, s.batches.sent, 'lean batches accepted')
  await be.flush()
  const found = be.store.listFindings({ host: 'cap-udp', limit: 50 }).items.filter(f => f.rule === 'test_refused_by_name')
  t.equal(found.length, 1, 'the rule that reads activity_name and protocol_name matched the lean UDP refusals')
  t.equal(found[0]?.records, 5)
})
