import t from 'tap'
import { Packr } from 'msgpackr'
import { DIRECTION, PROTOCOL_VER, SEVERITY } from '../../shared/ocsf/constants.js'
import { loadOcsfSchema } from '../../shared/ocsf/schema.js'
import { checkFor, FIELD_CHECKS, RecordChecks, RECORD_WINDOW } from '../../backend/detection/field-checks.js'
import { Projector, RecordError } from '../../backend/detection/projector.js'
import { DetectionEngine } from '../../backend/detection/engine.js'
import { compileRuleSet } from '../../backend/detection/rules/compile.js'
import { loadRuleDir } from '../../backend/detection/rules/load.js'
import { LIMITS, probeRecord, SHIPPED_RULES } from './helpers/records.js'

// Every projected field is checked for meaning where the projector reads it,
// by a check its path picks from one table. The table's OCSF values come
// from the OCSF 1.8.0 schema (checked here against the vendored copy).

const NOW = Date.UTC(2025, 5, 1)
const packr = new Packr({ useRecords: false })

function enumValues (path: string): number[] {
  const c = checkFor(path)
  if (c?.kind !== 'enum') throw new Error(`${path} has no enum check`)
  return [...c.values].sort((a, b) => a - b)
}
const sorted = (xs: Iterable<number | string>): number[] => [...xs].map(Number).sort((a, b) => a - b)

t.test('the table agrees with the OCSF 1.8.0 schema', async t => {
  const schema = loadOcsfSchema()
  if (schema === undefined) { t.skip('no OCSF 1.8.0 schema folder (vendor/ocsf/1.8.0)'); return }
  t.same(enumValues('class_uid'), sorted(schema.classes.keys()), 'class_uid: every class the schema defines, and no other')
  const acts = new Set<number>()
  for (const c of schema.classes.values()) for (const k of c.attrs.get('activity_id')?.enumCaptions?.keys() ?? []) acts.add(Number(k))
  t.same(enumValues('activity_id'), sorted(acts), 'activity_id: the activities of every class')
  const net = schema.classes.get(4001)
  const own = checkFor('activity_id')
  t.same(sorted(own?.kind === 'enum' ? own.byClass?.get(4001) ?? [] : []), sorted(net?.attrs.get('activity_id')?.enumCaptions?.keys() ?? []), 'network_activity narrows activity_id to its own')
  t.same(enumValues('severity_id'), sorted(net?.attrs.get('severity_id')?.enumCaptions?.keys() ?? []), 'severity_id')
  t.same(sorted(Object.values(SEVERITY)), enumValues('severity_id'))
  const conn = schema.objects.get('network_connection_info')
  t.same(enumValues('connection_info.direction_id'), sorted(conn?.attrs.get('direction_id')?.enumCaptions?.keys() ?? []), 'direction_id')
  t.same(sorted(Object.values(DIRECTION)), enumValues('connection_info.direction_id'))
  t.same(enumValues('connection_info.protocol_ver_id'), sorted(conn?.attrs.get('protocol_ver_id')?.enumCaptions?.keys() ?? []), 'protocol_ver_id')
  t.same(sorted(Object.values(PROTOCOL_VER)), enumValues('connection_info.protocol_ver_id'))
  const port = schema.objects.get('network_endpoint')?.attrs.get('port')?.type?.range
  t.match(checkFor('dst_endpoint.port'), { kind: 'int', min: port?.[0], max: port?.[1] }, 'a port is port_t')
})

t.test('a path picks its check from the table', async t => {
  t.equal(FIELD_CHECKS.length > 0, true)
  t.match(checkFor('time'), { kind: 'time' })
  t.match(checkFor('start_time'), { kind: 'time' })
  t.equal(checkFor('metadata.logged_time'), undefined, 'only the record\'s own times')
  t.match(checkFor('proxy_endpoint.port'), { kind: 'int', min: 0, max: 65535 }, 'any *.port')
  t.match(checkFor('device.ip'), { kind: 'ip' }, 'any *.ip')
  t.equal(checkFor('device.ipx'), undefined)
  t.match(checkFor('connection_info.protocol_num'), { kind: 'int', min: 0, max: 255 })
  t.equal(checkFor('status_detail'), undefined, 'strings a rule may read are not checked for meaning')
})

interface Case { path: string, ok: unknown[], bad: Array<[unknown, RegExp]> }

const CASES: Case[] = [
  {
    path: 'time',
    ok: [NOW, NOW - RECORD_WINDOW.maxAgeMs, NOW + RECORD_WINDOW.maxAheadMs, NOW + 0.5, null],
    bad: [
      [NOW - RECORD_WINDOW.maxAgeMs - 1, /^time \d+ \(.*Z\) is outside what the collector accepts, 7 days before to 5 minutes after its clock \(2025-06-01T00:00:00.000Z\)/],
      [NOW + RECORD_WINDOW.maxAheadMs + 1, /outside what the collector accepts/],
      [NaN, /^time NaN is not a finite number/],
      [-Infinity, /^time -Infinity is not a finite number/],
      [-1e20, /^time -100000000000000000000 is outside/],
      [String(NOW), /^time '\d+' is not a number/],
      [{ ms: NOW }, /^time \(a map, array or binary value\) is not a number/],
    ],
  },
  {
    path: 'dst_endpoint.port',
    ok: [0, 80, 65535],
    bad: [[70000, /^dst_endpoint.port 70000 is not a port/], [-1, /-1 is not a port/], [80.5, /80.5 is not a port/], ['80', /^dst_endpoint.port '80' is a string, not a port/], [true, /true is not a port/]],
  },
  {
    path: 'src_endpoint.ip',
    ok: ['198.51.100.7', '::1', '2001:db8::7', '::ffff:10.0.0.1', 'fe80::1%eth0'],
    bad: [['not-an-ip', /^src_endpoint.ip 'not-an-ip' is not an IPv4 or IPv6 address$/], ['256.1.1.1', /is not an IPv4/], ['1:2:3', /is not an IPv4/], [3232235777, /^src_endpoint.ip 3232235777 is not an IPv4/], ['\u0000evil\n', /'\?evil\?' is not/]],
  },
  { path: 'class_uid', ok: [4001, 1007, 0], bad: [[9999, /^class_uid 9999 is not an OCSF 1.8.0 class_uid$/], [4001.5, /not an OCSF/], ['4001', /is a string/]] },
  { path: 'connection_info.direction_id', ok: [0, 1, 99], bad: [[5, /direction_id 5 is not an OCSF direction_id/]] },
  { path: 'connection_info.protocol_num', ok: [6, 17, 0, 255], bad: [[256, /not an IP protocol number/]] },
  { path: 'connection_info.protocol_ver_id', ok: [4, 6], bad: [[5, /not an OCSF protocol_ver_id/]] },
  { path: 'severity_id', ok: [1, 99], bad: [[7, /not an OCSF severity_id/]] },
]

function set (rec: Record<string, any>, path: string, v: unknown): void {
  const parts = path.split('.')
  let cur = rec
  for (const p of parts.slice(0, -1)) cur = cur[p] ??= {}
  cur[parts[parts.length - 1]] = v
}

t.test('each check passes what the field may hold and refuses the rest, naming record, field and value', async t => {
  const paths = CASES.map(c => c.path)
  const p = new Projector(paths, 4, new RecordChecks(paths))
  const lim = { maxStringBytes: 4096, maxDepth: 16, maxRecords: 100 }
  const base = (): Record<string, any> => ({ class_uid: 4001 })
  for (const c of CASES) {
    for (const v of c.ok) {
      const r = base()
      set(r, c.path, v)
      t.doesNotThrow(() => p.scan(packr.pack([base(), r]), lim, NOW), `${c.path} ${String(v)} passes`)
    }
    for (const [v, why] of c.bad) {
      const r = base()
      set(r, c.path, v)
      let err: unknown
      try { p.scan(packr.pack([base(), base(), r]), lim, NOW) } catch (e) { err = e }
      t.ok(err instanceof RecordError, `${c.path} ${String(v)} is refused`)
      t.equal((err as RecordError).record, 2)
      t.match((err as Error).message.replace(/^record 2: /, ''), why)
    }
  }
  const absent = base()
  t.equal(p.scan(packr.pack([absent]), lim, NOW), 1, 'absent fields pass')
})

t.test('activity_id: network_activity allows its own, other classes theirs', async t => {
  const p = new Projector(['class_uid', 'activity_id'], 4, new RecordChecks(['class_uid', 'activity_id']))
  const lim = { maxStringBytes: 4096, maxDepth: 16, maxRecords: 100 }
  t.equal(p.scan(packr.pack([{ class_uid: 4001, activity_id: 5 }, { class_uid: 1001, activity_id: 14 }, { activity_id: 14 }]), lim, NOW), 3)
  t.throws(() => p.scan(packr.pack([{ activity_id: 14, class_uid: 4001 }]), lim, NOW), { record: 0, message: "record 0: activity_id 14 is not an activity_id of the record's class" }, 'whatever the order of the keys')
  t.throws(() => p.scan(packr.pack([{ class_uid: 1001, activity_id: 50 }]), lim, NOW), { record: 0 })
})

t.test('the engine refuses the batch as invalid_record, spends its seq, and honours its window', async t => {
  const rules = compileRuleSet(loadRuleDir(SHIPPED_RULES))
  const eng = new DetectionEngine(rules, { limits: { ...LIMITS, maxRecordAgeMs: 60_000, maxRecordAheadMs: 1000 }, productVersion: 'test' })
  const rec = (dt: number): ReturnType<typeof probeRecord> => probeRecord('w', { t: NOW + dt, src: '198.51.100.1', port: 1 })
  const send = (seq: number, dt: number): ReturnType<DetectionEngine['processBatch']> => eng.processBatch({ hostId: 'w', seq, count: 2, bytes: packr.pack([rec(0), rec(dt)]), recvAt: NOW }, NOW)
  t.match(send(1, -60_001), { status: 'refused', reason: 'invalid_record', error: 'PICKET_ERR_RECORD', message: /^record 1: time \d+ .* 1 minute before to 1 second after its clock/ })
  t.match(send(2, 1001), { status: 'refused', reason: 'invalid_record' })
  t.same(send(3, -60_000), { status: 'accepted', records: 2 })
  t.same(send(1, 0), { status: 'duplicate' }, 'a refused seq is spent')
  t.equal(eng.stats.refused, 2)
})
