import t, { type Test } from 'tap'
import { KDIR, KIND, NET_EVENT, HEADER, RST_REASON_UNKNOWN } from '../../bpf/abi.js'
import { ipv6At } from '../../agent/normalize/ip.js'
import { NetProbe } from '../../bpf/index.js'
import { PacketProbe } from '../../bpf/packet.js'
import { PKT_KIND } from '../../bpf/packet-layout.js'
import { requireReal } from '../helpers/env.js'
import { recordsDuring } from '../helpers/ring.js'
import { listeningPorts, nmap, nmapPorts, run } from '../helpers/scan.js'

// `nmap -6 -sU` gets ICMPv6 port unreachable (type 1 code 4) for every closed
// port. No tracepoint carries those on this kernel (icmp:icmp_send is IPv4
// only); the kernel sends them from its own ICMPv6 socket, which sits in the
// root cgroup, so cgroup_skb egress on the cgroup v2 root sees them, from
// every network namespace. Scans stay on loopback (or in a namespace the
// test creates).

const PORTS = '1000-1020'
const PORT_LIST = [...Array(21).keys()].map(i => 1000 + i)

interface Icmp6Record { kind: number, size: number, tgid: number, laddr: string, raddr: string, lport: number, rport: number, family: number, protocol: number, direction: number, type: number, code: number, reason: number, sock: bigint }

function readNet (slab: SharedArrayBuffer, length: number): Icmp6Record[] {
  const buf = new Uint8Array(slab)
  const dv = new DataView(slab)
  const out: Icmp6Record[] = []
  for (let p = 0; p < length; p += dv.getUint16(p + HEADER.size, true)) {
    out.push({
      kind: dv.getUint16(p + HEADER.kind, true),
      size: dv.getUint16(p + HEADER.size, true),
      tgid: dv.getUint32(p + HEADER.tgid, true),
      laddr: ipv6At(buf, p + NET_EVENT.laddr),
      raddr: ipv6At(buf, p + NET_EVENT.raddr),
      lport: dv.getUint16(p + NET_EVENT.lport, true),
      rport: dv.getUint16(p + NET_EVENT.rport, true),
      family: dv.getUint16(p + NET_EVENT.family, true),
      protocol: buf[p + NET_EVENT.protocol],
      direction: buf[p + NET_EVENT.direction],
      type: buf[p + NET_EVENT.icmp_type],
      code: buf[p + NET_EVENT.icmp_code],
      reason: dv.getUint32(p + NET_EVENT.reason, true),
      sock: dv.getBigUint64(p + NET_EVENT.sock, true),
    })
  }
  return out
}

const drained = async (ringFd: number, fn: () => Promise<unknown>): Promise<Icmp6Record[]> => await recordsDuring(ringFd, fn, readNet)

function checkOnePerClosedPort (t: Test, recs: Icmp6Record[], closed: number[]): void {
  const ports = recs.map(r => r.lport).sort((a, b) => a - b)
  t.same(ports, closed, 'one record per closed port probed, none for open ones')
  for (const r of recs) {
    t.equal(r.size, NET_EVENT.SIZEOF)
    t.equal(r.family, 10)
    t.equal(r.protocol, 17, 'udp')
    t.equal(r.direction, KDIR.INBOUND, 'the prober initiated')
    t.equal(r.raddr, '::1', 'remote: the probe\'s source')
    t.equal(r.laddr, '::1', 'local: the probed address')
    t.ok(r.rport > 0, 'the probe\'s source port')
    t.equal(r.type, 1, 'destination unreachable')
    t.equal(r.code, 4, 'port unreachable')
    t.equal(r.reason, RST_REASON_UNKNOWN)
    t.equal(r.tgid, 0, 'no process: the kernel answered')
    t.equal(r.sock, 0n)
  }
  t.equal(new Set(recs.map(r => r.rport)).size, 1, 'nmap probes from one source port')
}

t.test('nmap -6 -sU on ::1: one ICMPv6 port-unreachable record per closed port', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ss'] })) return
  const probe = PacketProbe.open({ dns: false })
  t.teardown(() => probe.close())
  t.same(probe.attached, ['cgroup_skb/egress'], 'ICMPv6 alone needs only the egress program')
  const open = await listeningPorts('udp')
  let stdout = ''
  const recs = await drained(probe.netRingFd, async () => { stdout = (await nmap({ type: '-sU', ports: PORTS, target: '::1' })).stdout })
  const closed = PORT_LIST.filter(p => !open.has(p))
  t.same(nmapPorts(stdout, 'closed'), closed, 'nmap saw them closed')
  t.ok(recs.every(r => r.kind === PKT_KIND.NET_ICMP6))
  checkOnePerClosedPort(t, recs, closed)
  const c = probe.counters()
  t.equal(c.icmp6.matched, recs.length, 'counted')
  t.equal(c.icmp6.reserveFailed, 0)
})

t.test('sharing NetProbe\'s ring: ICMPv6 records arrive among the tracepoint records', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ss'] })) return
  const net = NetProbe.open({ programs: { state: false } })
  t.teardown(() => net.close())
  const probe = PacketProbe.open({ dns: false, netRingFd: net.ringFd })
  t.teardown(() => probe.close())
  t.not(probe.netRingFd, net.ringFd, 'the probe holds its own fd of the map')
  const open = await listeningPorts('udp')
  const recs = await drained(net.ringFd, async () => {
    await nmap({ type: '-sU', ports: PORTS, target: '::1' })
    await nmap({ type: '-sU', ports: PORTS, source: '127.0.0.71' })
  })
  const closed = PORT_LIST.filter(p => !open.has(p))
  checkOnePerClosedPort(t, recs.filter(r => r.kind === PKT_KIND.NET_ICMP6), closed)
  const v4 = recs.filter(r => r.kind === KIND.NET_ICMP && r.family === 2)
  t.ok(v4.length >= closed.length, `the IPv4 scan still comes from icmp:icmp_send (${v4.length})`)
  t.equal(recs.filter(r => r.kind === PKT_KIND.NET_ICMP6).length, closed.length, 'IPv4 ICMP is not reported twice')
})

t.test('a scan inside another network namespace is seen too', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ip'] })) return
  const ns = `picket-icmp6-${process.pid}`
  const ip = async (...args: string[]): Promise<void> => {
    const r = await run('ip', args)
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`)
  }
  await ip('netns', 'add', ns)
  t.teardown(async () => { await ip('netns', 'del', ns) })
  await ip('-n', ns, 'link', 'set', 'lo', 'up')
  const probe = PacketProbe.open({ dns: false })
  t.teardown(() => probe.close())
  const recs = await drained(probe.netRingFd, async () => {
    const r = await run('ip', ['netns', 'exec', ns, 'nmap', '-6', '-sU', '-Pn', '-n', '-p', PORTS, '::1'])
    if (r.code !== 0) throw new Error(`nmap in ${ns}: ${r.stderr}`)
  })
  // nothing listens in a fresh namespace: every port is closed
  checkOnePerClosedPort(t, recs, PORT_LIST)
})
