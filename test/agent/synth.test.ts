import t from 'tap'
import type { DecodeEnv } from '../../agent/normalize/types.js'
import { KDIR, KIND, NET_EVENT, RST_REASON_UNKNOWN, TCP } from '../../bpf/abi.js'
import { MsgpackWriter } from '../../agent/normalize/pack.js'
import { encodeNetRecord, readNetRecord, type RawNetRecord } from '../../bpf/records.js'
import { SYNTH_NO_SOCKET_REASON, SYNTH_RST_REASONS, synthIdOf, synthRecord, SynthSource } from '../../agent/source/synth.js'
import { unpackRecords } from '../../shared/codec.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import type { NetworkActivity } from '../../shared/ocsf/types.js'
import { leanDecode } from '../helpers/lean.js'

// The synthetic source is the kernel's stand-in for every agent test and the
// pipeline benchmark, so it must write exactly what net.bpf.c writes; and
// the decoder's msgpack writer must write what msgpackr reads back.

const src = { hostId: 'host-synth', hostname: 'synth.example', agentVersion: '0.0.0-test' }
const shared = { metadata: makeMetadata(src), device: makeDevice(src) }
const env: DecodeEnv = {
  bootToWallNs: 1_700_000_000_000_000_000,
  rstReasons: SYNTH_RST_REASONS,
  noSocketReason: SYNTH_NO_SOCKET_REASON,
}

function decode (buf: Uint8Array): NetworkActivity[] {
  const { res, objects } = leanDecode(buf, env, shared)
  if (res.errors !== 0) throw new Error(res.firstError)
  return objects
}

const base: RawNetRecord = {
  kind: KIND.NET_RESET, cpu: 3, bootNs: 123_456_789_000n, pid: 0, tgid: 0, comm: '', family: 2,
  laddr: '127.0.0.1', raddr: '127.0.0.66', lport: 22, rport: 40000, protocol: 6, direction: KDIR.INBOUND,
  oldstate: TCP.CLOSE, newstate: 0, icmpType: 0, icmpCode: 0, reason: SYNTH_NO_SOCKET_REASON, sock: 0n, durationNs: 0n,
}

t.test('encodeNetRecord and readNetRecord are inverses, field for field', async t => {
  const cases: RawNetRecord[] = [
    base,
    { ...base, kind: KIND.NET_STATE, pid: 4242, tgid: 4240, comm: 'curl', direction: KDIR.OUTBOUND, oldstate: TCP.CLOSE, newstate: TCP.SYN_SENT, sock: 0xffff8881_2345_6780n, reason: RST_REASON_UNKNOWN },
    { ...base, kind: KIND.NET_STATE, oldstate: TCP.ESTABLISHED, newstate: TCP.CLOSE, direction: KDIR.OUTBOUND, durationNs: 2_500_000_000n, sock: 1n },
    { ...base, kind: KIND.NET_ICMP, protocol: 17, icmpType: 3, icmpCode: 3, reason: RST_REASON_UNKNOWN },
    { ...base, family: 10, laddr: '0:0:0:0:0:0:0:1', raddr: 'fd00:0:0:0:0:0:1:2' },
    { ...base, bootNs: 2n ** 63n + 5n, comm: 'fifteen-chars!!' },
  ]
  const buf = new Uint8Array(NET_EVENT.SIZEOF)
  for (const c of cases) {
    t.equal(encodeNetRecord(c, buf, 0), NET_EVENT.SIZEOF)
    t.same(readNetRecord(buf, 0), c, `round trip of kind ${c.kind} family ${c.family}`)
  }
  // compressed and mapped IPv6 text forms are accepted and read back expanded
  encodeNetRecord({ ...base, family: 10, laddr: '::1', raddr: '::ffff:10.1.2.3' }, buf, 0)
  const back = readNetRecord(buf, 0)
  t.equal(back.laddr, '0:0:0:0:0:0:0:1')
  t.equal(back.raddr, '0:0:0:0:0:ffff:a01:203')
  t.throws(() => encodeNetRecord({ ...base, laddr: '300.1.1.1' }, buf, 0), /not an IPv4 address/)
  t.throws(() => encodeNetRecord({ ...base, family: 10, laddr: '1::2::3' }, buf, 0), /not an IPv6 address/)
})

t.test('the decoder turns encoded records into the OCSF the mapping table predicts', async t => {
  const recs: RawNetRecord[] = [
    base,
    { ...base, kind: KIND.NET_ICMP, protocol: 17, lport: 53, icmpType: 3, icmpCode: 3, reason: RST_REASON_UNKNOWN },
    { ...base, kind: KIND.NET_STATE, pid: 4242, tgid: 4240, comm: 'curl', laddr: '10.0.0.5', raddr: '93.184.216.34', lport: 51000, rport: 443, direction: KDIR.OUTBOUND, newstate: TCP.SYN_SENT, reason: RST_REASON_UNKNOWN },
  ]
  const buf = new Uint8Array(recs.length * NET_EVENT.SIZEOF)
  recs.forEach((r, i) => encodeNetRecord(r, buf, i * NET_EVENT.SIZEOF))
  const [refuse, icmp, open] = decode(buf)
  t.equal(refuse.type_uid, 400105, 'RST with no socket → Refuse')
  t.same(refuse.src_endpoint, { ip: '127.0.0.66', port: 40000 }, 'inbound: the peer is the source')
  t.same(refuse.dst_endpoint, { ip: '127.0.0.1', port: 22 })
  t.match(refuse.status_detail, /NO_SOCKET/)
  t.equal(refuse.time, Math.floor((123_456_789_000 + env.bootToWallNs) / 1e6), 'boot time + bootToWall = wall ms')
  t.equal(refuse.device?.uid, 'host-synth')
  t.equal(icmp.type_uid, 400105)
  t.equal(icmp.connection_info?.protocol_name, 'udp')
  t.equal(open.type_uid, 400101)
  t.equal(open.connection_info?.direction_id, 2)
  t.match(open.actor?.process, { pid: 4240, name: 'curl' }, 'the process of a connect is known')
})

t.test('synthetic streams: record i carries identity i, every kind appears, IPv6 too', async t => {
  const n = 5000
  const buf = new Uint8Array(n * NET_EVENT.SIZEOF)
  const source = new SynthSource({ seed: 7 })
  const sab = new SharedArrayBuffer(buf.length)
  const r = source.drain(sab, 0, sab.byteLength, 0)
  t.same(r, { bytes: buf.length, records: n })
  buf.set(new Uint8Array(sab))
  const out = decode(buf)
  t.equal(out.length, n)
  t.same(out.map(o => synthIdOf(o)), Array.from({ length: n }, (_, i) => i), 'ids 0..n-1 in order')
  const kinds = new Set(out.map(o => `${o.type_uid}/${o.connection_info?.protocol_name}/v${o.connection_info?.protocol_ver_id}`))
  for (const k of ['400105/tcp/v4', '400105/udp/v4', '400101/tcp/v4', '400102/tcp/v4', '400105/tcp/v6']) t.ok(kinds.has(k), `stream has ${k}`)
  // random access agrees with the stream
  for (const i of [0, 1, 1023, 1024, 4999]) {
    const one = new Uint8Array(NET_EVENT.SIZEOF)
    encodeNetRecord(synthRecord(7, i, 0), one, 0)
    const a = decode(one)[0]
    t.equal(synthIdOf(a), i)
    t.same({ ...a, time: 0 }, { ...out[i], time: 0 }, `synthRecord(7, ${i}) is record ${i} of the stream`)
  }
  // identities far past 2^24 survive (they spill into the remote port)
  const big = new Uint8Array(NET_EVENT.SIZEOF)
  encodeNetRecord(synthRecord(7, 123_456_789), big, 0)
  t.equal(synthIdOf(decode(big)[0]), 123_456_789)
})

t.test('SynthSource: finite total, blocking like a ring, whole records only', async t => {
  const s = new SynthSource({ total: 250 })
  const sab = new SharedArrayBuffer(100 * NET_EVENT.SIZEOF + 50)
  t.same(s.drain(sab, 0, sab.byteLength, 0), { bytes: 100 * NET_EVENT.SIZEOF, records: 100 }, 'only whole records fit')
  t.same(s.drain(sab, 0, 10, 0), { bytes: 0, records: 0 }, 'a region smaller than a record takes none')
  t.equal(s.drain(sab, 0, sab.byteLength, 0).records, 100)
  t.equal(s.drain(sab, 0, sab.byteLength, 0).records, 50)
  t.ok(s.exhausted)
  const t0 = performance.now()
  t.equal(s.drain(sab, 0, sab.byteLength, 30).records, 0)
  t.ok(performance.now() - t0 >= 25, 'an empty source blocks for the timeout')
  t.same(s.stats(), { emitted: 250, dropped: 0, firstId: 0, nextId: 250 })
  s.close()
  t.throws(() => s.drain(sab, 0, 100, 0))
})

t.test('SynthSource rate mode: a ring that is not drained fills and counts drops like the kernel', async t => {
  const s = new SynthSource({ rate: 100_000, total: 10_000, ringBytes: 1000 * NET_EVENT.SIZEOF })
  await new Promise(resolve => setTimeout(resolve, 150)) // all 10,000 arrive; the ring holds 1,000
  const sab = new SharedArrayBuffer(1 << 20)
  t.equal(s.drain(sab, 0, sab.byteLength, 0).records, 1000, 'the ring held 1,000 records')
  t.equal(s.drain(sab, 0, sab.byteLength, 0).records, 0, 'then it is empty')
  const c = s.counters()
  t.equal(c.reset.matched, 10_000, 'every arrival is matched')
  t.equal(c.reset.reserveFailed, 9000, 'the rest failed to reserve')
  t.same(s.stats(), { emitted: 1000, dropped: 9000, firstId: 0, nextId: 1000 }, 'drops consume no identity: emitted ids stay consecutive')
  t.ok(s.exhausted)
})

t.test('the decoder\'s msgpack writer: what msgpackr reads back, at every width', async t => {
  const w = new MsgpackWriter(16) // small on purpose: it must grow
  const values = [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, 0.5, 'a'.repeat(31), 'a'.repeat(32), 'a'.repeat(256), 'a'.repeat(70000), '日本語', new Array(20).fill(1), Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i]))]
  t.same(unpackRecords(w.pack(values)), values)
  // the raw-struct writers: IPv4 text, a NUL-terminated Latin-1 comm, a length patched in later
  const raw = new Uint8Array([0, 9, 99, 100, 255, 0x41, 0xe9, 0xff, 0, 0x42, ...new Array<number>(16).fill(0xff)])
  w.reset()
  const at = w.array32()
  w.ipv4(raw, 0); w.ipv4(raw, 1); w.latin1z(raw, 5, 16); w.latin1z(raw, 10, 16); w.latin1z(raw, 5, 2); w.nil()
  w.patchArray32(at, 6)
  t.same(unpackRecords(w.finish()), ['0.9.99.100', '9.99.100.255', 'A\u00e9\u00ff', '\u00ff'.repeat(16), 'A\u00e9', null])
})
