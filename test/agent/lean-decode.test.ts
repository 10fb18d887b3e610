import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { AF_INET, KDIR, KIND, NET_EVENT, RST_REASON_UNKNOWN, TCP } from '../../bpf/abi.js'
import { encodeNetRecord, type RawNetRecord } from '../../bpf/records.js'
import { buildRegistry, REGISTRY } from '../../agent/normalize/registry.js'
import type { DecodeEnv, Normaliser } from '../../agent/normalize/types.js'
import { SYNTH_NO_SOCKET_REASON, SYNTH_RST_REASONS, synthBootToWallNs, SynthSource } from '../../agent/source/synth.js'
import { packValue, unpackRecords, unpackValue } from '../../shared/codec.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { loadOcsfSchema, validateEvent } from '../../shared/ocsf/schema.js'
import type { NetworkActivity } from '../../shared/ocsf/types.js'
import { leanDecode } from '../helpers/lean.js'
import { decodeNetRecords } from '../helpers/net-reference.js'

// The lean decoder (agent/normalize: the class registry, net.ts, the batch
// encoder) against the full-form decoder it replaced (test/helpers/net-reference.ts):
// the same raw records must mean exactly the same OCSF objects once
// expanded (shared/ocsf/lean.ts expandBatch), and each must be valid OCSF 1.8.0.

const schema = loadOcsfSchema()
const src = { hostId: 'host-lean', hostname: 'lean.example', agentVersion: '0.0.0-test', ip: '10.0.0.5' }
const metadata = makeMetadata(src)
const device = makeDevice(src)
const env: DecodeEnv = { bootToWallNs: synthBootToWallNs(), rstReasons: SYNTH_RST_REASONS, noSocketReason: SYNTH_NO_SOCKET_REASON }

function synthSlab (n: number, seed = 1): Uint8Array {
  const sab = new SharedArrayBuffer(n * NET_EVENT.SIZEOF)
  const s = new SynthSource({ seed, total: n })
  s.drain(sab, 0, sab.byteLength, 0)
  s.close()
  return new Uint8Array(sab)
}

const lean = (buf: Uint8Array, e: DecodeEnv = env, maxBatchBytes?: number): ReturnType<typeof leanDecode> => leanDecode(buf, e, { metadata, device }, maxBatchBytes)

function reference (buf: Uint8Array, e: DecodeEnv = env): Array<Record<string, unknown>> {
  const out: NetworkActivity[] = []
  decodeNetRecords(buf, 0, buf.length, { ...e, metadata, device }, out)
  return JSON.parse(JSON.stringify(out)) as Array<Record<string, unknown>>
}

function sameObjects (t: Tap.Test, got: unknown[], want: unknown[], what: string): void {
  t.equal(got.length, want.length, `${what}: as many records`)
  const bad = got.findIndex((o, i) => !isDeepStrictEqual(o, want[i]))
  if (bad >= 0) t.same(got[bad], want[bad], `${what}: record ${bad} differs`)
  else t.pass(`${what}: every record expands to exactly the full-form object`)
}

t.test('the synthetic mix, decoded lean and expanded, is exactly the full-form OCSF, and valid', async t => {
  if (schema === undefined) return t.fail('the vendored OCSF 1.8.0 schema must load')
  const buf = synthSlab(20_000)
  const { w, spans, res, objects } = lean(buf)
  t.same(res, { records: 20_000, written: 20_000, skipped: 0, errors: 0 })
  t.equal(spans.length, 1, 'one batch when it fits')
  sameObjects(t, objects, reference(buf), 'seed 1')
  for (const keepRaw of [false]) {
    const e = { ...env, unmapped: keepRaw }
    sameObjects(t, lean(buf, e).objects, reference(buf, e), 'without unmapped')
  }
  const seen = new Map<string, object>()
  for (const o of objects) seen.set(`${o.type_uid}/${JSON.stringify(o.connection_info)}/${Object.keys(o).join()}`, o)
  t.same([...seen.values()].flatMap(o => validateEvent(schema, o)), [], `every distinct kind of record (${seen.size}) validates against OCSF 1.8.0`)
  // what travels: no caption, no metadata or device in a record
  const ctx = unpackValue(w.buffer.subarray(spans[0].contextOffset, spans[0].contextOffset + spans[0].contextLength)) as { shared: Record<string, unknown>, shapes: string[][] }
  t.same(ctx.shared, { metadata, device }, 'metadata and device once, in the context')
  const paths = ctx.shapes.flat()
  // protocol_name alone may travel: when the protocol number has no keyword, its caption is 'unknown'
  const derived = new Set(['class_name', 'category_uid', 'category_name', 'type_uid', 'type_name', ...schema.siblings])
  t.same(paths.filter(p => derived.has(p.slice(p.lastIndexOf('.') + 1)) || /^(metadata|device)\./.test(p)), [], 'no caption and nothing shared in any shape')
  for (const cap of ['activity_name', 'severity', 'connection_info.direction', 'connection_info.protocol_ver']) t.notOk(paths.includes(cap), `${cap} is derived, not sent`)
  const bytes = spans[0].length + spans[0].contextLength
  t.ok(bytes / 20_000 <= 160, `${(bytes / 20_000).toFixed(1)} bytes per network record with the context (full form: ${(packValue(objects).length / 20_000).toFixed(0)})`)
})

const base: RawNetRecord = {
  kind: KIND.NET_STATE, cpu: 0, bootNs: 5_000_000_000n, pid: 4242, tgid: 4240, comm: 'curl', family: AF_INET,
  laddr: '10.1.1.1', raddr: '10.2.2.2', lport: 443, rport: 51000, protocol: 6, direction: KDIR.UNKNOWN,
  oldstate: 0, newstate: 0, icmpType: 0, icmpCode: 0, reason: RST_REASON_UNKNOWN, sock: 0xffff888812345678n, durationNs: 0n,
}

function raw (...recs: Array<Partial<RawNetRecord>>): Uint8Array {
  const buf = new Uint8Array(NET_EVENT.SIZEOF * recs.length)
  recs.forEach((r, i) => encodeNetRecord({ ...base, ...r }, buf, i * NET_EVENT.SIZEOF))
  return buf
}

t.test('every branch of the mapping, and the odd values, mean the same in both forms', async t => {
  if (schema === undefined) return t.fail('the vendored OCSF 1.8.0 schema must load')
  const states = [0, TCP.ESTABLISHED, TCP.SYN_SENT, TCP.SYN_RECV, TCP.CLOSE, TCP.LISTEN, TCP.CLOSE_WAIT, 99]
  const recs: Array<Partial<RawNetRecord>> = []
  for (const kdir of [KDIR.UNKNOWN, KDIR.INBOUND, KDIR.OUTBOUND, KDIR.LOCAL]) {
    for (const newstate of states) for (const oldstate of states) recs.push({ direction: kdir, oldstate, newstate, durationNs: oldstate === 0 ? 0n : 1_234_567n })
    for (const reason of [0, 1, 11, 77, RST_REASON_UNKNOWN]) for (const oldstate of [0, TCP.ESTABLISHED, 99]) recs.push({ kind: KIND.NET_RESET, direction: kdir, reason, oldstate })
  }
  for (const [type, code] of [[3, 3], [3, 0], [3, 13], [3, 5], [1, 4]]) recs.push({ kind: KIND.NET_ICMP, protocol: 17, direction: KDIR.INBOUND, icmpType: type, icmpCode: code })
  recs.push(
    { newstate: TCP.SYN_SENT, direction: KDIR.OUTBOUND, tgid: 0, pid: 0 }, // a connect with no process
    { newstate: TCP.SYN_SENT, direction: KDIR.OUTBOUND, comm: '<img src=x>\xff\x80é' }, // attacker-chosen comm, decoded lossily
    { newstate: TCP.SYN_SENT, direction: KDIR.OUTBOUND, comm: '\xff'.repeat(16) }, // 32 bytes of UTF-8
    { newstate: TCP.SYN_SENT, direction: KDIR.OUTBOUND, lport: 0, rport: 0 },
    { kind: KIND.NET_RESET, direction: KDIR.INBOUND, protocol: 132, reason: 1 }, // no IANA keyword known: 'unknown'
    { newstate: TCP.LISTEN, protocol: 250, laddr: '0.0.0.0', raddr: '0.0.0.0', rport: 0 },
    { kind: KIND.NET_ICMP, protocol: 0, icmpType: 3, icmpCode: 3 },
    { kind: KIND.NET_RESET, family: 10, direction: KDIR.INBOUND, reason: 1, laddr: '2001:db8::1', raddr: '::ffff:10.0.0.1' },
    { family: 10, newstate: TCP.SYN_SENT, direction: KDIR.OUTBOUND, laddr: '::', raddr: 'fe80::1:2:3:4' },
    { laddr: '255.255.255.255', raddr: '0.0.0.0', kind: KIND.NET_RESET, direction: KDIR.INBOUND, reason: 1 },
    { laddr: '100.10.1.199', raddr: '9.99.100.250', kind: KIND.NET_RESET, direction: KDIR.INBOUND, reason: 1 },
    { family: 99, laddr: '::1', raddr: '::1' }, // not an address family the class knows: not written, counted
  )
  const buf = raw(...recs)
  for (const unmapped of [true, false]) {
    const e = { ...env, unmapped, rstReasons: { 0: 'NOT_SPECIFIED', 1: 'NO_SOCKET', 11: 'TCP_ABORT_ON_CLOSE' } }
    const got = lean(buf, e)
    t.same(got.res, { records: recs.length, written: recs.length - 1, skipped: 0, errors: 0 }, 'the unknown family is not written')
    sameObjects(t, got.objects, reference(buf, e), `${recs.length - 1} records, unmapped ${String(unmapped)}`)
    t.same(got.objects.flatMap(o => validateEvent(schema, o)), [], 'each validates against OCSF 1.8.0')
  }
  // the reason names are the running kernel's: another env, other names
  const other = { ...env, rstReasons: { 1: 'NO_SOCKET_OTHER' } }
  const one = raw({ kind: KIND.NET_RESET, direction: KDIR.INBOUND, reason: 1 })
  t.match(lean(one, other).objects[0], { status_detail: 'TCP RST sent: no socket listening (NO_SOCKET_OTHER)', unmapped: { rst_reason: 'NO_SOCKET_OTHER' } })
})

t.test('batches split under max batch bytes, context included; each decodes on its own', async t => {
  const buf = synthSlab(3000, 5)
  const { w, spans, objects } = lean(buf, env, 32 * 1024)
  t.ok(spans.length > 5, `${spans.length} batches`)
  for (const s of spans) t.ok(s.length + s.contextLength <= 32 * 1024, `batch of ${s.count}: ${s.length} + ${s.contextLength} bytes`)
  t.equal(spans.reduce((n, s) => n + s.count, 0), 3000)
  t.same(spans.map(s => unpackRecords(w.buffer.subarray(s.offset, s.offset + s.length)).length), spans.map(s => s.count))
  sameObjects(t, objects, reference(buf), 'split batches')
})

t.test('malformed input is counted, not thrown, and framing errors stop the batch', async t => {
  const buf = raw({ kind: KIND.NET_RESET, direction: KDIR.INBOUND, reason: 1 }, { kind: 99 }, { kind: KIND.NET_RESET, direction: KDIR.INBOUND, reason: 1 })
  const a = lean(buf)
  t.match(a.res, { records: 2, written: 2, errors: 1, firstError: /kind 99/ })
  t.equal(a.objects.length, 2)
  new DataView(buf.buffer).setUint16(NET_EVENT.SIZEOF + 2, 7, true) // size 7: framing broken
  const b = lean(buf)
  t.match(b.res, { records: 1, written: 1, errors: 1, firstError: /size 7/ })
  t.same(lean(new Uint8Array(0)).spans, [], 'no records, no batch')
})

t.test('the registry: kinds route to one class each; shapes are numbered across classes', async t => {
  t.same(REGISTRY.normalisers.map(n => n.name), ['network', 'process', 'file', 'dns'])
  t.equal(REGISTRY.byKind[KIND.NET_RESET]?.name, 'network')
  t.equal(REGISTRY.byKind[KIND.PROC_EXEC]?.name, 'process')
  t.equal(REGISTRY.byKind[KIND.FILE_RENAME]?.name, 'file')
  t.equal(REGISTRY.shape0[KIND.NET_STATE], 0, 'network keeps shape 0: appended classes move no older shape')
  const fake: Normaliser = { name: 'fake', classUid: 1007, kinds: { 40: 48 }, shapes: [['class_uid']], write: () => -1 }
  const r = buildRegistry([...REGISTRY.normalisers, fake])
  t.equal(r.shape0[40], REGISTRY.shapes.length, 'a second class\'s shapes follow the first\'s')
  t.throws(() => buildRegistry([fake, { ...fake, name: 'again' }]), /kind 40 is claimed by both fake and again/)
})
