import fc from 'fast-check'
import { isIP } from 'node:net'
import { compileRuleSet } from '../../backend/detection/rules/compile.js'
import { loadRuleDir } from '../../backend/detection/rules/load.js'
import { DEFAULT_LIMITS, type Limits } from '../../backend/limits.js'
import { CLASS, DIRECTION, NET_ACTIVITY } from '../../shared/ocsf/constants.js'
import { makeDevice, makeMetadata, makeNetworkActivity } from '../../shared/ocsf/network.js'
import { rootPath } from '../../shared/paths.js'
import { collectorService } from '../../shared/proto/index.js'
import { nthAddress } from '../injector/plan.js'
import { Entries, HostilePacker, Raw, describeValue, materializeValue, nestedValue, rangeValue, typeValue, type HostileValue } from './values.js'

// The fuzzer's one generator, shared by test/fuzz/collector-fuzz.test.ts,
// `npm run fuzz` and the reliability drills. fast-check generates an
// EpisodeSpec (plain data: one Ship stream of 1 to 4 batches, each a real
// network_activity scan built by makeNetworkActivity plus the mutations of
// the classes it drew); materialize() turns it into protobuf-ready messages
// just before they are sent. The same seed gives the same specs; records
// are stamped relative to the moment they are built, as the injector does.

export const MUTATION_CLASSES = {
  types: 'a field the rules or OCSF read set to another type (string, number, bool, nil, map, array, bin, ext, bigint, bad UTF-8)',
  ranges: 'values past their range: NaN, ±Infinity, −1e20, 2^53, negative and over-65535 ports, near-IP strings, strings around max_string_bytes',
  structure: 'nesting past max_depth (to 100,000 levels), duplicate and non-string keys, missing fields, scalar or array records',
  count: 'Batch.count that disagrees with the records',
  size: 'batch size: empty, no records field, thousands of records, max_records and max_records + 1, over max_batch_bytes, over the transport limit',
  bytes: 'msgpack bytes truncated, bit-flipped, with trailing garbage or the unused byte 0xc1, a lying array header, not an array',
  seq: 'seq 0, −1, 2^53 − 1, 2^53, 2^53 + 1, 2^63, 2^64 − 1, jumps, repeats, going back',
  host: 'host id empty, with invalid characters, 257 or 10,000 characters, another host\'s id (its device.uid too), another host\'s device.uid in the records',
  meta: 'hostname and agent_version around max_string_bytes, drop counters, captured_total and sent_at_ms at 2^64 − 1',
  proto: 'bytes that are not a Batch message: random, empty, truncated, bit-flipped, a wrong wire type',
  none: 'no mutation: a well-formed scan batch (control)',
} as const
export type MutationClass = keyof typeof MUTATION_CLASSES

/** How often a batch draws each class (independently); a batch that draws none is a control. */
const CLASS_ODDS: Readonly<Record<Exclude<MutationClass, 'none'>, number>> = {
  types: 0.35, ranges: 0.35, structure: 0.2, count: 0.1, size: 0.04, bytes: 0.15, seq: 0.15, host: 0.15, meta: 0.08, proto: 0.03,
}

/** Fields the shipped rules read (what the detection worker projects), and the rest of a record's OCSF shape. */
export const RULE_PATHS: readonly string[] = compileRuleSet(loadRuleDir(rootPath('backend', 'rules'))).paths
export const FIELD_PATHS: readonly string[] = [...new Set([
  ...RULE_PATHS, 'device', 'src_endpoint', 'dst_endpoint', 'connection_info', 'metadata', 'metadata.product.version',
  'unmapped', 'status_detail', 'actor.process.pid', 'type_uid', 'severity_id', 'category_uid', 'is_src_dst_assignment_known',
  'duration', 'x_fuzz',
])]

export interface ScanSpec { ports: number, firstPort: number, stride: number, open: boolean, udp: boolean, v6: boolean, ageMs: number, spacingMs: number }
type RecordEdit = { cls: MutationClass, record: number } & (
  | { op: 'set', path: string, value: HostileValue }
  | { op: 'delete', path: string }
  | { op: 'replace', value: HostileValue }
  | { op: 'dupkey', key: string, value: HostileValue }
  | { op: 'oddkey', key: number | null | boolean })
type SizeSpec = { k: 'scan' } | { k: 'empty' } | { k: 'absent' } | { k: 'many', n: number } | { k: 'nils', over: boolean } | { k: 'oversize' } | { k: 'transport' } | { k: 'wide' }
type CountSpec = { k: 'exact' } | { k: 'delta', d: number } | { k: 'value', v: number }
type SeqSpec = { k: 'next' } | { k: 'repeat' } | { k: 'back' } | { k: 'jump', by: bigint } | { k: 'value', v: bigint }
type HostSpec = { k: 'own' } | { k: 'value', v: string } | { k: 'victim' } | { k: 'neighbour' } | { k: 'records', whose: 'victim' | 'neighbour', all: boolean }
type BytesEdit =
  | { op: 'truncate', at: number } | { op: 'flip', at: number[], xor: number } | { op: 'append', v: Uint8Array }
  | { op: 'replace', v: Uint8Array } | { op: 'header', d: number } | { op: 'wrap', as: 'map' | 'str' | 'nil' | 'record' } | { op: 'c1', at: number }
  | { op: 'garbage-record', record: number, v: Uint8Array }
interface MetaSpec { hostname?: HostileValue, agentVersion?: HostileValue, drops?: bigint, captured?: bigint, sentAt?: bigint }
type ProtoSpec = { k: 'random', v: Uint8Array } | { k: 'empty' } | { k: 'truncate', at: number } | { k: 'flip', at: number, xor: number } | { k: 'wiretype' }

export interface BatchSpec {
  classes: MutationClass[]
  scan: ScanSpec
  size: SizeSpec
  edits: RecordEdit[]
  count: CountSpec
  seq: SeqSpec
  host: HostSpec
  bytes: BytesEdit[]
  meta: MetaSpec
  proto: ProtoSpec | undefined
}

export interface EpisodeSpec { batches: BatchSpec[] }

const STRIDES = [1, 2, 7, 11, 13, 19, 23, 29, 31] // coprime with 65535: ports stay distinct
const U64_MAX = 2n ** 64n - 1n

const scanArb: fc.Arbitrary<ScanSpec> = fc.record({
  // about a quarter cross the port-scan threshold (15): enough findings to drive the outputs, few enough to stay fast (a finding costs the backend a store transaction)
  ports: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 14 }) }, { weight: 2, arbitrary: fc.integer({ min: 15, max: 24 }) }, { weight: 1, arbitrary: fc.integer({ min: 25, max: 60 }) }),
  firstPort: fc.integer({ min: 0, max: 65534 }),
  stride: fc.constantFrom(...STRIDES),
  open: fc.boolean(),
  udp: fc.boolean(),
  v6: fc.boolean(),
  ageMs: fc.integer({ min: 0, max: 120_000 }),
  spacingMs: fc.integer({ min: 0, max: 50 }),
})

function editsArb (classes: readonly MutationClass[], L: Limits): fc.Arbitrary<RecordEdit[]> {
  const parts: Array<fc.Arbitrary<RecordEdit>> = []
  const record = fc.nat()
  const path = fc.constantFrom(...FIELD_PATHS)
  if (classes.includes('types')) parts.push(fc.record({ cls: fc.constant('types' as const), op: fc.constant('set' as const), record, path, value: typeValue() }))
  if (classes.includes('ranges')) parts.push(fc.record({ cls: fc.constant('ranges' as const), op: fc.constant('set' as const), record, path: fc.constantFrom(...RULE_PATHS), value: rangeValue(L.maxStringBytes) }))
  if (classes.includes('structure')) {
    const cls = fc.constant('structure' as const)
    parts.push(fc.oneof(
      fc.record({ cls, op: fc.constant('set' as const), record, path, value: nestedValue() }),
      fc.record({ cls, op: fc.constant('delete' as const), record, path }),
      fc.record({ cls, op: fc.constant('replace' as const), record, value: fc.oneof(typeValue(), rangeValue(L.maxStringBytes), nestedValue()) }),
      fc.record({ cls, op: fc.constant('dupkey' as const), record, key: fc.constantFrom(...RULE_PATHS.map(p => p.split('.')[0])), value: fc.oneof(typeValue(), rangeValue(L.maxStringBytes)) }),
      fc.record({ cls, op: fc.constant('oddkey' as const), record, key: fc.constantFrom(0, -1, 4001, null, true) }),
    ))
  }
  if (parts.length === 0) return fc.constant([])
  return fc.array(fc.oneof(...parts), { minLength: 1, maxLength: 4 })
}

function sizeArb (): fc.Arbitrary<SizeSpec> {
  // the heavy ones (8 to 17 MiB each) rare enough that 10,000 batches carry a few of each
  return fc.oneof(
    { weight: 20, arbitrary: fc.constant({ k: 'empty' as const }) },
    { weight: 12, arbitrary: fc.constant({ k: 'absent' as const }) },
    { weight: 16, arbitrary: fc.integer({ min: 300, max: 2000 }).map(n => ({ k: 'many' as const, n })) },
    { weight: 12, arbitrary: fc.boolean().map(over => ({ k: 'nils' as const, over })) },
    { weight: 2, arbitrary: fc.constant({ k: 'oversize' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'transport' as const }) },
    { weight: 1, arbitrary: fc.constant({ k: 'wide' as const }) },
  )
}

function countArb (L: Limits): fc.Arbitrary<CountSpec> {
  return fc.oneof(
    fc.integer({ min: -3, max: 5 }).filter(d => d !== 0).map(d => ({ k: 'delta' as const, d })),
    fc.constantFrom(0, 1, 2 ** 31, 2 ** 32 - 1, L.maxRecords, L.maxRecords + 1).map(v => ({ k: 'value' as const, v })),
  )
}

const seqArb: fc.Arbitrary<SeqSpec> = fc.oneof(
  fc.constantFrom({ k: 'repeat' as const }, { k: 'back' as const }),
  fc.constantFrom(2n, 1000n, 2n ** 32n, 2n ** 53n).map(by => ({ k: 'jump' as const, by })),
  fc.constantFrom(0n, -1n, -(2n ** 63n), 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, U64_MAX).map(v => ({ k: 'value' as const, v })),
  fc.bigInt({ min: 0n, max: U64_MAX }).map(v => ({ k: 'value' as const, v })),
)

const hostArb: fc.Arbitrary<HostSpec> = fc.oneof(
  fc.constantFrom('', ' ', 'host name', 'ho\0st', 'höst', '-leading', '.dot', '../../etc/passwd', 'a\nb', '\u202ehost', 'x'.repeat(257), 'y'.repeat(10_000)).map(v => ({ k: 'value' as const, v })),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }).map(v => ({ k: 'value' as const, v })),
  fc.constantFrom({ k: 'victim' as const }, { k: 'neighbour' as const }),
  fc.record({ whose: fc.constantFrom('victim' as const, 'neighbour' as const), all: fc.boolean() }).map(x => ({ k: 'records' as const, ...x })),
)

function bytesArb (): fc.Arbitrary<BytesEdit[]> {
  const frac = fc.double({ min: 0, max: 1, noNaN: true })
  return fc.array(fc.oneof(
    fc.record({ op: fc.constant('truncate' as const), at: frac }),
    fc.record({ op: fc.constant('flip' as const), at: fc.array(frac, { minLength: 1, maxLength: 4 }), xor: fc.integer({ min: 1, max: 255 }) }),
    fc.record({ op: fc.constant('append' as const), v: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
    fc.record({ op: fc.constant('replace' as const), v: fc.uint8Array({ maxLength: 256 }) }),
    fc.record({ op: fc.constant('header' as const), d: fc.oneof(fc.integer({ min: -3, max: 5 }).filter(d => d !== 0), fc.constantFrom(65_535, 2 ** 32 - 1)) }),
    fc.record({ op: fc.constant('wrap' as const), as: fc.constantFrom('map' as const, 'str' as const, 'nil' as const, 'record' as const) }),
    fc.record({ op: fc.constant('c1' as const), at: frac }),
    fc.record({ op: fc.constant('garbage-record' as const), record: fc.nat(), v: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
  ), { minLength: 1, maxLength: 2 })
}

function metaArb (L: Limits): fc.Arbitrary<MetaSpec> {
  const text = fc.oneof(
    fc.record({ ch: fc.constantFrom('a', '€'), bytes: fc.constantFrom(L.maxStringBytes, L.maxStringBytes + 1, 65_536) }).map(x => ({ k: 'long' as const, ...x })),
    fc.string({ unit: 'binary', maxLength: 30 }).map(v => ({ k: 'str' as const, v })),
  )
  const big = fc.oneof(fc.constantFrom(0n, 2n ** 53n, 2n ** 63n, U64_MAX), fc.bigInt({ min: 0n, max: U64_MAX }))
  return fc.record({ hostname: text, agentVersion: text, drops: big, captured: big, sentAt: big }, { requiredKeys: [] })
}

const protoArb: fc.Arbitrary<ProtoSpec> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 64 }).map(v => ({ k: 'random' as const, v })),
  fc.constant({ k: 'empty' as const }),
  fc.double({ min: 0, max: 0.999, noNaN: true }).map(at => ({ k: 'truncate' as const, at })),
  fc.record({ at: fc.double({ min: 0, max: 0.999, noNaN: true }), xor: fc.integer({ min: 1, max: 255 }) }).map(x => ({ k: 'flip' as const, ...x })),
  fc.constant({ k: 'wiretype' as const }),
)

/** Which classes a batch draws: each independently, at its odds. */
const classesArb: fc.Arbitrary<MutationClass[]> = fc.tuple(...Object.keys(CLASS_ODDS).map(() => fc.noBias(fc.integer({ min: 0, max: 9999 })))).map(rolls => {
  const names = Object.keys(CLASS_ODDS) as Array<Exclude<MutationClass, 'none'>>
  const out: MutationClass[] = names.filter((c, i) => rolls[i] < CLASS_ODDS[c] * 10_000)
  return out.length > 0 ? out : ['none']
})

export function batchArb (L: Limits = DEFAULT_LIMITS): fc.Arbitrary<BatchSpec> {
  return classesArb.chain(classes => {
    const has = (c: MutationClass): boolean => classes.includes(c)
    return fc.record({
      classes: fc.constant(classes),
      scan: scanArb,
      size: has('size') ? sizeArb() : fc.constant<SizeSpec>({ k: 'scan' }),
      edits: editsArb(classes, L),
      count: has('count') ? countArb(L) : fc.constant<CountSpec>({ k: 'exact' }),
      seq: has('seq') ? seqArb : fc.constant<SeqSpec>({ k: 'next' }),
      host: has('host') ? hostArb : fc.constant<HostSpec>({ k: 'own' }),
      bytes: has('bytes') ? bytesArb() : fc.constant([]),
      meta: has('meta') ? metaArb(L) : fc.constant({}),
      proto: has('proto') ? protoArb : fc.constant(undefined),
    })
  })
}

/**
 * One Ship stream of 1 to 6 batches, as an agent sends them: the first
 * batch's host is the stream's; a later batch that claims another host is a
 * switch mid-stream.
 */
export function episodeArb (L: Limits = DEFAULT_LIMITS): fc.Arbitrary<EpisodeSpec> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.array(batchArb(L), { minLength: 1, maxLength: 1 }) },
    { weight: 2, arbitrary: fc.array(batchArb(L), { minLength: 2, maxLength: 6 }) },
  ).map(batches => ({ batches }))
}

/**
 * Episodes first..first+count-1 of the stream a seed defines, generated in
 * chunks so that a long run never holds more than one chunk of specs: episode
 * i is always the same for the same seed, whatever else is asked for.
 */
export function * episodeSpecs (seed: number, first = 0, L: Limits = DEFAULT_LIMITS, chunk = 256): Generator<{ index: number, spec: EpisodeSpec }> {
  const arb = episodeArb(L)
  for (let c = Math.floor(first / chunk); ; c++) {
    const specs = fc.sample(arb, { seed: (seed + Math.imul(c, 0x9e3779b1)) | 0, numRuns: chunk })
    for (let j = 0; j < specs.length; j++) {
      const index = c * chunk + j
      if (index >= first) yield { index, spec: specs[j] }
    }
  }
}

// ---------------------------------------------------------------------------
// materialize: spec → messages

export interface EpisodeContext {
  seed: number
  index: number
  /** wall ms the records are stamped against */
  now: number
  /** the honest host whose id the fuzzer claims now and then */
  victim: string
  limits: Limits
}

/** One message on the stream. */
export interface Shipment {
  /** a Batch for the .proto's serializer, or raw bytes that stand in for one */
  message: Record<string, unknown> | Buffer
  /** seq as the collector reads it (a uint64 as a JS number), to match the Ack; undefined for raw bytes */
  seq: number | undefined
  records: number
  classes: MutationClass[]
  /** what was done, readable: "ranges: record 3 time = NaN" */
  labels: string[]
  /** contract violations in well-formed records: a batch holding one must not be acked OK */
  invalid: string[]
}

export interface Episode { index: number, hostId: string, shipments: Shipment[] }

export const episodeHost = (seed: number, index: number): string => `fz${(seed >>> 0).toString(36)}-${index}`

const packer = new HostilePacker()
const bigBuffers = new Map<number, Buffer>()

/** A msgpack array holding one bin of about `bytes` bytes, reused between batches. */
export function bigBatch (bytes: number): Buffer {
  let b = bigBuffers.get(bytes)
  if (b === undefined) {
    b = Buffer.alloc(bytes)
    b.set([0x91, 0xc6])
    b.writeUInt32BE(bytes - 6, 2)
    bigBuffers.set(bytes, b)
  }
  return b
}

export function scanRecords (s: ScanSpec, n: number, hostId: string, index: number, now: number): Array<Record<string, unknown>> {
  const src = s.v6 ? nthAddress('fd00:f022::', index) : nthAddress('100.64.0.0', index)
  const info = { hostId, hostname: 'fuzz-host', agentVersion: 'fuzz' }
  const out: Array<Record<string, unknown>> = []
  for (let i = 0; i < n; i++) {
    const port = 1 + ((s.firstPort + i * s.stride) % 65535)
    out.push(makeNetworkActivity({
      timeMs: now - s.ageMs + i * s.spacingMs,
      activityId: s.open ? NET_ACTIVITY.OPEN : NET_ACTIVITY.REFUSE,
      directionId: DIRECTION.INBOUND,
      protocolNum: s.udp ? 17 : 6,
      ipVersion: s.v6 ? 6 : 4,
      srcIp: src,
      srcPort: 40_000 + (i % 20_000),
      dstIp: s.v6 ? 'fd00:f022:ffff::1' : '10.99.0.1',
      dstPort: port,
      assignmentKnown: true,
      statusDetail: s.udp ? 'ICMP destination unreachable sent: port unreachable (type 3 code 3)' : 'TCP RST sent: no socket listening (NO_SOCKET)',
    }, makeMetadata(info), makeDevice(info)) as unknown as Record<string, unknown>)
  }
  return out
}

function setPath (rec: Record<string, unknown>, path: string, v: unknown): void {
  const parts = path.split('.')
  let o = rec
  for (const p of parts.slice(0, -1)) {
    const next = o[p]
    if (next === null || typeof next !== 'object' || Array.isArray(next) || next instanceof Raw || next instanceof Uint8Array) o[p] = {}
    o = o[p] as Record<string, unknown>
  }
  o[parts[parts.length - 1]] = v
}

function getPath (rec: Record<string, unknown>, path: string): unknown {
  let o: unknown = rec
  for (const p of path.split('.')) {
    if (o === null || typeof o !== 'object' || o instanceof Raw || o instanceof Uint8Array) return undefined
    o = (o as Record<string, unknown>)[p]
  }
  return o
}

function deletePath (rec: Record<string, unknown>, path: string): void {
  const parts = path.split('.')
  const parent = parts.length === 1 ? rec : getPath(rec, parts.slice(0, -1).join('.'))
  if (parent !== null && typeof parent === 'object' && !(parent instanceof Raw)) delete (parent as Record<string, unknown>)[parts[parts.length - 1]]
}

const YEAR = 365 * 86_400_000
const isMapRaw = (r: Raw): boolean => { const b = r.bytes[0]; return (b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf }
const asNumber = (v: unknown): number | undefined => typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined

/**
 * The ways record `i` breaks its documented contract, judged only where no
 * reading can differ: a record is a map; a time is a finite number within a
 * year back and a day ahead; a port is an integer from 0 to 65535; an IP
 * parses; device.uid is the batch's host; enum ids are non-negative
 * integers. Null counts as absent. A record written from entries (duplicate
 * keys) is not judged. The backend routes a record by its class_uid and
 * reads (and checks) only the fields its class's rules read, dropping the
 * rest unread (backend/detection/projector.ts): so the endpoint, direction
 * and protocol fields are judged only on network_activity (4001) records,
 * the one class whose rules read them here.
 */
export function violations (rec: unknown, i: number, hostId: string, now: number): string[] {
  if (rec instanceof Entries) return []
  if (rec instanceof Raw) return isMapRaw(rec) ? [] : [`record ${i} is not a map`]
  if (rec === null || typeof rec !== 'object' || Array.isArray(rec) || rec instanceof Uint8Array) return [`record ${i} is not a map`]
  const r = rec as Record<string, unknown>
  const out: string[] = []
  const present = (p: string): unknown => { const v = getPath(r, p); return v === null ? undefined : v }
  const t = present('time')
  if (t !== undefined) {
    const n = asNumber(t)
    if (n === undefined || !Number.isFinite(n) || n < now - YEAR || n > now + 86_400_000) out.push(`record ${i} time ${String(t)}`)
  }
  const network = asNumber(present('class_uid')) === CLASS.NETWORK_ACTIVITY.uid
  for (const p of network ? ['src_endpoint.port', 'dst_endpoint.port'] : []) {
    const v = present(p)
    if (v === undefined) continue
    const n = asNumber(v)
    if (n === undefined || !Number.isInteger(n) || n < 0 || n > 65535) out.push(`record ${i} ${p} ${typeof v === 'string' ? JSON.stringify(v.slice(0, 20)) : String(v)}`)
  }
  for (const p of network ? ['src_endpoint.ip', 'dst_endpoint.ip'] : []) {
    const v = present(p)
    if (v !== undefined && (typeof v !== 'string' || isIP(v) === 0)) out.push(`record ${i} ${p} ${typeof v === 'string' ? JSON.stringify(v.slice(0, 20)) : typeof v}`)
  }
  const uid = present('device.uid')
  if (uid !== undefined && uid !== hostId) out.push(`record ${i} device.uid is not the batch's host`)
  for (const p of ['class_uid', 'activity_id', ...(network ? ['connection_info.direction_id', 'connection_info.protocol_num'] : [])]) {
    const v = present(p)
    const n = asNumber(v)
    if (n !== undefined && (!Number.isInteger(n) || n < 0)) out.push(`record ${i} ${p} ${String(v)}`)
  }
  return out
}

function isPlainRecord (r: unknown): r is Record<string, unknown> {
  return r !== null && typeof r === 'object' && !Array.isArray(r) && !(r instanceof Raw) && !(r instanceof Entries) && !(r instanceof Uint8Array)
}

function applyEdit (records: unknown[], e: RecordEdit, labels: string[]): void {
  const cls = e.cls
  if (records.length === 0) return
  const i = e.record % records.length
  const rec = records[i]
  if (e.op === 'replace') {
    records[i] = materializeValue(e.value)
    labels.push(`${cls}: record ${i} replaced by ${describeValue(e.value)}`)
    return
  }
  if (!isPlainRecord(rec)) return
  const r = rec
  packer.touch(r)
  switch (e.op) {
    case 'set': setPath(r, e.path, materializeValue(e.value)); labels.push(`${cls}: record ${i} ${e.path} = ${describeValue(e.value)}`); break
    case 'delete': deletePath(r, e.path); labels.push(`${cls}: record ${i} without ${e.path}`); break
    case 'dupkey': records[i] = new Entries([...Object.entries(r), [e.key, materializeValue(e.value)]]); labels.push(`${cls}: record ${i} has ${e.key} twice, the second ${describeValue(e.value)}`); break
    case 'oddkey': records[i] = new Entries([...Object.entries(r), [e.key, 'x']]); labels.push(`${cls}: record ${i} has the key ${String(e.key)}`); break
  }
}

function editBytes (b: Uint8Array, e: BytesEdit, n: number, records: unknown[]): { bytes: Uint8Array, label: string } {
  switch (e.op) {
    case 'truncate': { const at = Math.floor(e.at * b.length); return { bytes: b.subarray(0, at), label: `truncated to ${at} of ${b.length} bytes` } }
    case 'flip': {
      const c = Buffer.from(b)
      for (const f of e.at) if (c.length > 0) c[Math.min(c.length - 1, Math.floor(f * c.length))] ^= e.xor
      return { bytes: c, label: `${e.at.length} byte(s) xor 0x${e.xor.toString(16)}` }
    }
    case 'append': return { bytes: Buffer.concat([b, e.v]), label: `${e.v.length} bytes of garbage appended` }
    case 'replace': return { bytes: e.v, label: `replaced by ${e.v.length} random bytes` }
    case 'header': { const h = Math.max(0, n + e.d) >>> 0; return { bytes: packer.pack(records, h), label: `array header says ${h} records, holds ${n}` } }
    case 'wrap': {
      const as = { map: new Entries([['records', new Raw(b)]]), str: 'records', nil: null, record: records[0] ?? {} }[e.as]
      return { bytes: packer.pack([as]).subarray(1), label: `records is a ${e.as}, not an array` }
    }
    case 'c1': { const c = Buffer.from(b); if (c.length > 0) c[Math.min(c.length - 1, Math.floor(e.at * c.length))] = 0xc1; return { bytes: c, label: 'the never-used byte 0xc1 written in' } }
    case 'garbage-record': {
      if (records.length === 0) return { bytes: b, label: 'no record to garble' }
      const i = e.record % records.length
      const copy = records.slice()
      copy[i] = new Raw(e.v)
      return { bytes: packer.pack(copy), label: `record ${i} replaced by ${e.v.length} garbage bytes` }
    }
  }
}

const wireU64 = (v: bigint): string => BigInt.asUintN(64, v).toString()
const asJsNumber = (v: bigint): number => Number(BigInt.asUintN(64, v))

/** Fields of the Batch message this generator does not know (added to the .proto later): filled per episode, so a stream looks like one agent. */
// context (the lean form's shared fields and shapes) is known and left empty:
// the generator mutates full-form records, which an empty context announces
const KNOWN_FIELDS = new Set(['host_id', 'seq', 'count', 'records', 'drops', 'hostname', 'sent_at_ms', 'agent_version', 'captured_total', 'context'])
const EXTRA_FIELDS: ReadonlyArray<{ name: string, type: string }> = (((collectorService().Ship as unknown as { requestType?: { type?: { field?: Array<{ name: string, type: string }> } } }).requestType?.type?.field) ?? [])
  .filter(f => !KNOWN_FIELDS.has(f.name))

function extraFields (seed: number, index: number): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const f of EXTRA_FIELDS) {
    if (f.type === 'TYPE_STRING') out[f.name] = `fz-${seed >>> 0}-${index}`
    else if (f.type === 'TYPE_BYTES') { const b = Buffer.alloc(16); b.writeUInt32BE(seed >>> 0, 0); b.writeUInt32BE(index >>> 0, 4); out[f.name] = b } else if (/INT|FIXED/.test(f.type)) out[f.name] = index + 1
  }
  return out
}

export function materialize (spec: EpisodeSpec, ctx: EpisodeContext): Episode {
  const own = episodeHost(ctx.seed, ctx.index)
  const neighbour = episodeHost(ctx.seed, Math.max(0, ctx.index - 1))
  const L = ctx.limits
  const extra = extraFields(ctx.seed, ctx.index)
  let lastSeq = 0n
  let streamHost = own
  const shipments = spec.batches.map((b, k): Shipment => {
    const labels: string[] = []
    const claimed = b.host.k === 'value' ? b.host.v : b.host.k === 'victim' ? ctx.victim : b.host.k === 'neighbour' ? neighbour : streamHost
    if (k === 0) streamHost = claimed
    if (b.host.k !== 'own' && b.host.k !== 'records') labels.push(`host: ${k === 0 ? 'the stream' : 'a later batch'} claims ${b.host.k === 'value' ? JSON.stringify(claimed.slice(0, 40)) + (claimed.length > 40 ? `… (${claimed.length} chars)` : '') : `the ${b.host.k}'s id`}`)
    let records: unknown[]
    let bytes: Uint8Array
    let judged = true
    switch (b.size.k) {
      case 'scan': records = scanRecords(b.scan, b.scan.ports, claimed, ctx.index, ctx.now); break
      case 'many': records = scanRecords(b.scan, b.size.n, claimed, ctx.index, ctx.now); labels.push(`size: ${b.size.n} records`); break
      case 'empty': case 'absent': records = []; labels.push(`size: ${b.size.k === 'empty' ? 'an empty array' : 'no records field'}`); break
      case 'nils': records = new Array(L.maxRecords + (b.size.over ? 1 : 0)).fill(null); labels.push(`size: ${records.length} nil records (max_records ${L.maxRecords})`); break
      case 'wide': {
        const n = Math.floor(L.maxBatchBytes / (L.maxStringBytes + 1000))
        records = scanRecords(b.scan, n, claimed, ctx.index, ctx.now)
        for (const r of records) (r as Record<string, unknown>).status_detail = 'w'.repeat(L.maxStringBytes - 8)
        labels.push(`size: ${n} records with ${L.maxStringBytes - 8}-byte strings, near max_batch_bytes`)
        break
      }
      case 'oversize': case 'transport': records = []; judged = false; break
    }
    if (b.host.k === 'records') {
      const whose = b.host.whose === 'victim' ? ctx.victim : neighbour
      const targets = b.host.all ? records.keys() : [0]
      for (const i of targets) { const r = records[i]; if (isPlainRecord(r)) setPath(r, 'device.uid', whose) }
      if (records.length > 0) labels.push(`host: ${b.host.all ? 'every record' : 'record 0'} carries the ${b.host.whose}'s device.uid`)
    }
    for (const e of b.edits) applyEdit(records, e, labels)
    if (b.size.k === 'oversize' || b.size.k === 'transport') {
      const n = b.size.k === 'oversize' ? L.maxBatchBytes + 1 : 2 * L.maxBatchBytes + 1024 * 1024 + 1
      bytes = bigBatch(n)
      labels.push(`size: ${n} bytes of records (max_batch_bytes ${L.maxBatchBytes})`)
    } else if (b.size.k === 'absent') {
      bytes = new Uint8Array(0)
    } else {
      bytes = packer.pack(records)
    }
    for (const e of b.bytes) {
      const r = editBytes(bytes, e, records.length, records)
      bytes = r.bytes
      labels.push(`bytes: ${r.label}`)
      judged = false
    }
    let count = records.length
    if (b.count.k === 'delta') { count = Math.max(0, count + b.count.d); labels.push(`count: says ${count}, holds ${records.length}`); judged = false } else if (b.count.k === 'value') { count = b.count.v; labels.push(`count: says ${count}, holds ${records.length}`); judged = count === records.length && judged }
    let seq: bigint
    switch (b.seq.k) {
      case 'next': seq = lastSeq + 1n; break
      case 'repeat': seq = lastSeq === 0n ? 1n : lastSeq; labels.push(`seq: ${seq} again`); break
      case 'back': seq = lastSeq - 1n; labels.push(`seq: back to ${seq}`); break
      case 'jump': seq = lastSeq + b.seq.by; labels.push(`seq: jumps by ${b.seq.by} to ${seq}`); break
      case 'value': seq = b.seq.v; labels.push(`seq: ${seq}`); break
    }
    lastSeq = seq
    const m = b.meta
    const message: Record<string, unknown> = {
      host_id: claimed,
      seq: wireU64(seq),
      count,
      records: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      hostname: m.hostname !== undefined ? materializeValue(m.hostname) : 'fuzz-host',
      agent_version: m.agentVersion !== undefined ? materializeValue(m.agentVersion) : 'fuzz',
      sent_at_ms: m.sentAt !== undefined ? wireU64(m.sentAt) : String(ctx.now),
      captured_total: m.captured !== undefined ? wireU64(m.captured) : '0',
      drops: m.drops !== undefined ? { kernel_reserve: wireU64(m.drops), refused: wireU64(m.drops) } : {},
      ...extra,
    }
    for (const [k, v] of Object.entries({ hostname: m.hostname, agent_version: m.agentVersion })) if (v !== undefined) labels.push(`meta: ${k} = ${describeValue(v)}`)
    if (m.drops !== undefined || m.captured !== undefined || m.sentAt !== undefined) labels.push(`meta: drops ${m.drops ?? 0}, captured_total ${m.captured ?? 0}, sent_at_ms ${m.sentAt ?? ctx.now}`)
    const invalid: string[] = []
    for (let i = 0; judged && i < records.length && invalid.length < 3; i++) invalid.push(...violations(records[i], i, claimed, ctx.now))
    const classes = b.classes
    if (b.proto !== undefined) {
      return { message: protoBytes(b.proto, message), seq: undefined, records: 0, classes, labels: [...labels, `proto: ${b.proto.k}`], invalid: [] }
    }
    if (labels.length === 0) labels.push('none')
    return { message, seq: asJsNumber(seq), records: records.length, classes, labels, invalid }
  })
  return { index: ctx.index, hostId: own, shipments }
}

/** A batch of `records` (or of these msgpack bytes) as an agent would ship it, for inputs built by hand (the reliability drills). */
export function plainShipment (o: { seed: number, episode: number, hostId: string, seq: bigint, records: readonly unknown[] | Uint8Array, classes: MutationClass[], label: string }): Shipment {
  const bytes = o.records instanceof Uint8Array ? o.records : packer.pack(o.records)
  const count = o.records instanceof Uint8Array ? 0 : o.records.length
  return {
    message: { host_id: o.hostId, seq: wireU64(o.seq), count, records: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), hostname: 'drill-host', agent_version: 'drill', ...extraFields(o.seed, o.episode) },
    seq: asJsNumber(o.seq),
    records: count,
    classes: o.classes,
    labels: [o.label],
    invalid: [],
  }
}

function protoBytes (p: ProtoSpec, message: Record<string, unknown>): Buffer {
  switch (p.k) {
    case 'random': return Buffer.from(p.v)
    case 'empty': return Buffer.alloc(0)
    case 'wiretype': return Buffer.from([0x12, 0x03, 0x61, 0x62, 0x63]) // field 2 (seq, a varint) as length-delimited bytes
    case 'truncate': case 'flip': {
      const full = Buffer.from(collectorService().Ship.requestSerialize(message))
      if (p.k === 'truncate') return full.subarray(0, Math.floor(p.at * full.length))
      full[Math.floor(p.at * full.length)] ^= p.xor
      return full
    }
  }
}
