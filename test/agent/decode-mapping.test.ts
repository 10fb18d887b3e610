import t from 'tap'
import type { DecodeEnv } from '../../agent/normalize/types.js'
import { encodeNetRecord, type RawNetRecord } from '../../bpf/records.js'
import { AF_INET, AF_INET6, KDIR, KIND, NET_EVENT, RST_REASON_UNKNOWN, TCP } from '../../bpf/abi.js'
import { DIRECTION, NET_ACTIVITY } from '../../shared/ocsf/constants.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { findOcsfSchemaDir, validateNetworkActivity } from '../../shared/ocsf/schema.js'
import type { NetworkActivity } from '../../shared/ocsf/types.js'
import { IN_CI } from '../helpers/env.js'
import { leanDecode } from '../helpers/lean.js'

// The DESIGN.md mapping table, record by record, from raw NET_EVENTS bytes
// through the agent's decoder, expanded to full OCSF as the backend reads it.

const src = { hostId: 'host-a', hostname: 'a.example', agentVersion: '0.1.0' }
const shared = { metadata: makeMetadata(src), device: makeDevice(src) }
const env: DecodeEnv = {
  bootToWallNs: 1_700_000_000_000 * 1e6,
  rstReasons: { 0: 'NOT_SPECIFIED', 1: 'NO_SOCKET', 11: 'TCP_ABORT_ON_CLOSE' },
  noSocketReason: 1,
}

const base: RawNetRecord = {
  kind: KIND.NET_STATE, cpu: 0, bootNs: 5_000_000_000n, pid: 4242, tgid: 4242, comm: 'curl', family: AF_INET,
  laddr: '10.1.1.1', raddr: '10.2.2.2', lport: 443, rport: 51000, protocol: 6, direction: KDIR.UNKNOWN,
  oldstate: 0, newstate: 0, icmpType: 0, icmpCode: 0, reason: RST_REASON_UNKNOWN, sock: 0xffff888812345678n, durationNs: 0n,
}

function decode (...recs: Array<Partial<RawNetRecord>>): NetworkActivity[] {
  const buf = new Uint8Array(NET_EVENT.SIZEOF * recs.length)
  recs.forEach((r, i) => encodeNetRecord({ ...base, ...r }, buf, i * NET_EVENT.SIZEOF))
  const { res, objects } = leanDecode(buf, env, shared)
  if (res.errors !== 0) throw new Error(res.firstError)
  return objects
}

const schemaDir = findOcsfSchemaDir()

function valid (t: { same: (a: unknown, b: unknown, m?: string) => void, fail: (m: string) => void }, r: NetworkActivity): void {
  if (schemaDir === undefined) {
    if (IN_CI) t.fail('CI=true and the OCSF 1.8.0 schema folder is missing')
    return
  }
  t.same(validateNetworkActivity(r), [], `${r.type_name} validates against OCSF 1.8.0`)
}

t.test('RST sent with no socket → Refuse, inbound, src = the prober', async t => {
  const [r] = decode({ kind: KIND.NET_RESET, direction: KDIR.INBOUND, reason: 1, lport: 22, raddr: '10.9.9.9', rport: 40000, pid: 0, tgid: 0 })
  t.equal(r.activity_id, NET_ACTIVITY.REFUSE)
  t.equal(r.type_uid, 400105)
  t.equal(r.connection_info?.direction_id, DIRECTION.INBOUND)
  t.same(r.src_endpoint, { ip: '10.9.9.9', port: 40000 })
  t.same(r.dst_endpoint, { ip: '10.1.1.1', port: 22 })
  t.equal(r.connection_info?.protocol_name, 'tcp')
  t.equal(r.time, 1_700_000_000_000 + 5000, 'boot time + offset = wall-clock ms')
  t.equal(r.actor, undefined, 'softirq context: no process attributed')
  valid(t, r)
})

t.test('RST sent by a socket (abort) → Reset, direction unknown', async t => {
  const [r] = decode({ kind: KIND.NET_RESET, direction: KDIR.UNKNOWN, reason: 11, oldstate: TCP.ESTABLISHED })
  t.equal(r.activity_id, NET_ACTIVITY.RESET)
  t.equal(r.is_src_dst_assignment_known, false)
  t.match(r.status_detail, /TCP_ABORT_ON_CLOSE/)
  t.same(r.unmapped, { rst_reason: 'TCP_ABORT_ON_CLOSE', sk_state: 'ESTABLISHED' })
  valid(t, r)
})

t.test('ICMP port unreachable → Refuse, protocol udp', async t => {
  const [r] = decode({ kind: KIND.NET_ICMP, protocol: 17, direction: KDIR.INBOUND, icmpType: 3, icmpCode: 3, lport: 53, raddr: '10.7.7.7', rport: 33000 })
  t.equal(r.activity_id, NET_ACTIVITY.REFUSE)
  t.equal(r.connection_info?.protocol_name, 'udp')
  t.equal(r.connection_info?.protocol_num, 17)
  t.same(r.src_endpoint, { ip: '10.7.7.7', port: 33000 })
  t.same(r.dst_endpoint, { ip: '10.1.1.1', port: 53 })
  t.match(r.status_detail, /port unreachable \(type 3 code 3\)/)
  valid(t, r)
})

t.test('ICMPv6 port unreachable (packet.bpf.c) → Refuse, protocol udp, IPv6', async t => {
  const [r] = decode({ kind: KIND.NET_ICMP6, family: AF_INET6, protocol: 17, direction: KDIR.INBOUND, icmpType: 1, icmpCode: 4, laddr: 'fd00::1', lport: 161, raddr: 'fd00::66', rport: 41000 })
  t.equal(r.activity_id, NET_ACTIVITY.REFUSE)
  t.equal(r.connection_info?.direction_id, DIRECTION.INBOUND)
  t.equal(r.connection_info?.protocol_num, 17)
  t.equal(r.connection_info?.protocol_ver_id, 6)
  t.same(r.src_endpoint, { ip: 'fd00::66', port: 41000 }, 'the prober')
  t.same(r.dst_endpoint, { ip: 'fd00::1', port: 161 }, 'the probed port')
  t.match(r.status_detail, /^ICMPv6 destination unreachable sent: port unreachable \(type 1 code 4\)$/)
  valid(t, r)
})

t.test('SYN_SENT → Open, outbound, attributed to the connecting process', async t => {
  const [r] = decode({ direction: KDIR.OUTBOUND, oldstate: TCP.CLOSE, newstate: TCP.SYN_SENT, lport: 0, rport: 443 })
  t.equal(r.activity_id, NET_ACTIVITY.OPEN)
  t.equal(r.connection_info?.direction_id, DIRECTION.OUTBOUND)
  t.same(r.src_endpoint, { ip: '10.1.1.1' }, 'source port unknown before bind: omitted, not 0')
  t.same(r.dst_endpoint, { ip: '10.2.2.2', port: 443 })
  t.same(r.actor, { process: { pid: 4242, name: 'curl', ptid: 4242 } })
  valid(t, r)
})

t.test('SYN_RECV → ESTABLISHED → Open, inbound', async t => {
  const [r] = decode({ direction: KDIR.INBOUND, oldstate: TCP.SYN_RECV, newstate: TCP.ESTABLISHED, lport: 8080, rport: 50001 })
  t.equal(r.activity_id, NET_ACTIVITY.OPEN)
  t.equal(r.connection_info?.direction_id, DIRECTION.INBOUND)
  t.same(r.src_endpoint, { ip: '10.2.2.2', port: 50001 })
  t.same(r.dst_endpoint, { ip: '10.1.1.1', port: 8080 })
  t.equal(r.actor, undefined)
  valid(t, r)
})

t.test('→ CLOSE → Close, with the direction and duration the kernel tracked', async t => {
  const [inb, out, unknown] = decode(
    { direction: KDIR.INBOUND, oldstate: TCP.ESTABLISHED, newstate: TCP.CLOSE, durationNs: 1_500_000_000n },
    { direction: KDIR.OUTBOUND, oldstate: TCP.SYN_SENT, newstate: TCP.CLOSE },
    { direction: KDIR.UNKNOWN, oldstate: TCP.ESTABLISHED, newstate: TCP.CLOSE })
  t.equal(inb.activity_id, NET_ACTIVITY.CLOSE)
  t.equal(inb.connection_info?.direction_id, DIRECTION.INBOUND)
  t.equal(inb.duration, 1500)
  t.same(inb.src_endpoint, { ip: '10.2.2.2', port: 51000 })
  t.equal(out.connection_info?.direction_id, DIRECTION.OUTBOUND)
  t.same(out.src_endpoint, { ip: '10.1.1.1', port: 443 })
  t.equal(unknown.is_src_dst_assignment_known, false)
  for (const r of [inb, out, unknown]) valid(t, r)
})

t.test('LISTEN → Listen, one endpoint', async t => {
  const [r] = decode({ direction: KDIR.LOCAL, oldstate: TCP.CLOSE, newstate: TCP.LISTEN, laddr: '0.0.0.0', lport: 8443, raddr: '0.0.0.0', rport: 0 })
  t.equal(r.activity_id, NET_ACTIVITY.LISTEN)
  t.equal(r.type_uid, 400107)
  t.equal(r.src_endpoint, undefined)
  t.same(r.dst_endpoint, { ip: '0.0.0.0', port: 8443 })
  t.equal(r.actor?.process?.pid, 4242)
  valid(t, r)
})

t.test('IPv6 addresses in RFC 5952 text form', async t => {
  const [a, b] = decode(
    { kind: KIND.NET_RESET, family: AF_INET6, direction: KDIR.INBOUND, reason: 1, laddr: '2001:db8::1', raddr: '2001:db8:0:0:1:0:0:1' },
    { kind: KIND.NET_RESET, family: AF_INET6, direction: KDIR.INBOUND, reason: 1, laddr: '::1', raddr: '::ffff:10.0.0.1' })
  t.equal(a.dst_endpoint?.ip, '2001:db8::1')
  t.equal(a.src_endpoint?.ip, '2001:db8::1:0:0:1')
  t.equal(a.connection_info?.protocol_ver_id, 6)
  t.equal(b.dst_endpoint?.ip, '::1')
  t.equal(b.src_endpoint?.ip, '::ffff:10.0.0.1')
  valid(t, a)
})

t.test('attacker-controlled comm is decoded lossily, never thrown on', async t => {
  const [r] = decode({ direction: KDIR.OUTBOUND, newstate: TCP.SYN_SENT, comm: '<img src=x>\xff' })
  t.equal(r.actor?.process?.name, '<img src=x>\xff')
})

t.test('a fold summary (the kernel\'s record of a flow\'s repeats) → count, start_time, end_time; time is the last repeat\'s', async t => {
  const summary = { kind: KIND.NET_RESET, direction: KDIR.INBOUND, reason: 1, lport: 22, raddr: '10.9.9.9', rport: 40000, pid: 0, tgid: 0 }
  const [first, folded] = decode(summary, { ...summary, bootNs: 5_900_000_000n, startNs: 5_001_000_000n, count: 1999 })
  t.equal(first.count, undefined, 'the first of the window goes alone')
  t.equal(folded.count, 1999)
  t.equal(folded.start_time, 1_700_000_000_000 + 5001)
  t.equal(folded.end_time, 1_700_000_000_000 + 5900)
  t.equal(folded.time, folded.end_time)
  t.same({ ...folded, count: undefined, start_time: undefined, end_time: undefined, time: first.time }, { ...first, count: undefined, start_time: undefined, end_time: undefined }, 'otherwise the same record')
  valid(t, folded)
  const [state] = decode({ kind: KIND.NET_STATE, direction: KDIR.OUTBOUND, newstate: TCP.SYN_SENT, oldstate: TCP.CLOSE, count: 5, startNs: 4_000_000_000n })
  t.equal(state.count, 5)
  t.equal(state.actor?.process?.pid, 4242, 'the fields of its own shape still follow')
  valid(t, state)
})
