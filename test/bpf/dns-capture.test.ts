import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PacketProbe } from '../../bpf/packet.js'
import { KIND } from '../../bpf/abi.js'
import { DNS_EVENT, DNS_SNAP, SKB_DIR } from '../../bpf/abi-dns.js'
import { requireReal } from '../helpers/env.js'
import { ANSWER_V4, ANSWER_V6, BIG_NAME, dig, DNS_V4, DNS_V6, parseDns, readDnsRecords, startDnsmasq, type DnsRecord } from '../helpers/dns.js'
import { recordsDuring } from '../helpers/ring.js'
import { run } from '../helpers/scan.js'

// packet.bpf.c against the real kernel and a real DNS server: dnsmasq on
// loopback, asked by dig (its own sockets), by glibc's getaddrinfo (getent,
// python) through a resolv.conf bind-mounted in a private mount namespace.

const UDP = 17
const TCP = 6
const TYPE_A = 1
const TYPE_AAAA = 28
const TYPE_TXT = 16

type Probe = ReturnType<typeof PacketProbe.open>

/** Records the probe emitted while `fn` ran, for names under `suffix` only. */
async function captured (probe: Probe, suffix: string, fn: () => Promise<unknown>): Promise<DnsRecord[]> {
  const rs = await recordsDuring(probe.ringFd, fn, readDnsRecords)
  return rs.filter(r => parseDns(r.payload).qname.endsWith(suffix))
}

const queries = (rs: DnsRecord[]): DnsRecord[] => rs.filter(r => !parseDns(r.payload).qr)
const answers = (rs: DnsRecord[]): DnsRecord[] => rs.filter(r => parseDns(r.payload).qr)
const u8 = (s: string): number[] => s.split('.').map(Number)
const v6bytes = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x07]

t.test('DNS capture on the cgroup v2 root', async t => {
  if (!requireReal(t, { bpf: true, commands: ['dnsmasq', 'dig', 'unshare', 'getent', 'python3'] })) return
  const server = await startDnsmasq()
  t.teardown(server.stop)
  const probe = PacketProbe.open({ icmp6: false })
  t.teardown(() => probe.close())
  t.same(probe.attached, ['cgroup_skb/egress', 'cgroup_skb/ingress', 'cgroup/connect4', 'cgroup/connect6', 'cgroup/sendmsg4', 'cgroup/sendmsg6'])

  t.test('dig over UDP/IPv4: one query leaving, one answer arriving, both dig\'s', async t => {
    let pid = 0
    const rs = await captured(probe, 'udp4.example.test', async () => { pid = (await dig([`@${DNS_V4}`, 'www.udp4.example.test', 'A'])).pid })
    t.equal(rs.length, 2, 'two records on loopback, not four: the server\'s side is not reported')
    const [q] = queries(rs)
    const [a] = answers(rs)
    t.ok(q !== undefined && a !== undefined, 'a query and an answer')
    t.equal(q.kind, KIND.DNS)
    t.equal(q.skbDir, SKB_DIR.EGRESS, 'the query leaves')
    t.equal(a.skbDir, SKB_DIR.INGRESS, 'the answer arrives')
    for (const r of [q, a]) {
      t.equal(r.protocol, UDP)
      t.equal(r.family, 2)
      t.equal(r.raddr, DNS_V4)
      t.equal(r.rport, 53)
      t.equal(r.laddr, '127.0.0.1')
      t.ok(r.lport > 1023, 'dig\'s ephemeral port')
      t.equal(r.ifindex, 1, 'loopback')
      t.ok(r.cookie > 0n, 'socket cookie')
      t.ok(r.attributed, 'attributed')
      t.equal(r.tgid, pid, 'to dig\'s process')
      t.match(r.comm, /^(dig|isc-)/, `comm is dig's thread name (${r.comm})`)
      t.equal(r.uid, 0)
      t.equal(r.captured, r.dnsLen, 'short messages are copied whole')
      t.equal(r.size, DNS_EVENT.payload + Math.ceil(r.captured / 8) * 8, 'variable-length record')
    }
    t.equal(q.cookie, a.cookie, 'query and answer on one socket')
    t.equal(q.lport, a.lport)
    const qm = parseDns(q.payload)
    const am = parseDns(a.payload)
    t.equal(qm.qname, 'www.udp4.example.test')
    t.equal(qm.qtype, TYPE_A)
    t.equal(am.id, qm.id, 'answer id matches the query id')
    t.equal(am.rcode, 0)
    t.same(am.answers.filter(x => x.type === TYPE_A).map(x => [...x.data]), [u8(ANSWER_V4)], 'the answer carries dnsmasq\'s address')
  })

  t.test('dig over IPv6, UDP and TCP', async t => {
    for (const [proto, flags] of [[UDP, []], [TCP, ['+tcp']]] as const) {
      let pid = 0
      const rs = await captured(probe, 'v6.example.test', async () => { pid = (await dig(['-6', ...flags, `@${DNS_V6}`, 'www.v6.example.test', 'AAAA'])).pid })
      t.equal(rs.length, 2, `a query and an answer over ${proto === UDP ? 'UDP' : 'TCP'}`)
      for (const r of rs) {
        t.equal(r.family, 10)
        t.equal(r.protocol, proto)
        t.equal(r.raddr, '::1')
        t.equal(r.laddr, '::1')
        t.equal(r.rport, 53)
        t.equal(r.tgid, pid)
      }
      const am = parseDns(answers(rs)[0].payload)
      t.equal(am.qtype, TYPE_AAAA)
      t.same(am.answers.filter(x => x.type === TYPE_AAAA).map(x => [...x.data]), [v6bytes])
    }
  })

  t.test('dig over TCP: the length prefix is stripped, each message of a kept-open connection reported once', async t => {
    let pid = 0
    const rs = await captured(probe, 'tcp.example.test', async () => {
      pid = (await dig(['+tcp', '+keepopen', `@${DNS_V4}`, 'one.tcp.example.test', 'A', 'two.tcp.example.test', 'A'])).pid
    })
    t.same(queries(rs).map(r => parseDns(r.payload).qname).sort(), ['one.tcp.example.test', 'two.tcp.example.test'])
    t.same(answers(rs).map(r => parseDns(r.payload).qname).sort(), ['one.tcp.example.test', 'two.tcp.example.test'])
    t.equal(rs.length, 4, 'no duplicates from ACKs, FINs or continuation segments')
    t.ok(rs.every(r => r.protocol === TCP && r.tgid === pid && r.rport === 53))
    t.equal(new Set(rs.map(r => r.cookie)).size, 1, 'one connection carried both')
    for (const r of answers(rs)) t.same(parseDns(r.payload).answers.map(x => [...x.data]), [u8(ANSWER_V4)])
  })

  t.test('an answer longer than the snap length is cut at 512 bytes and says how long it was', async t => {
    for (const tcp of [false, true]) {
      const rs = await captured(probe, BIG_NAME, async () => await dig([...(tcp ? ['+tcp'] : []), '+bufsize=4096', `@${DNS_V4}`, BIG_NAME, 'TXT']))
      const [a] = answers(rs)
      t.ok(a !== undefined, `answer over ${tcp ? 'TCP' : 'UDP'}`)
      t.ok(a.dnsLen > 1000, `dns_len ${a.dnsLen} is the whole message`)
      t.equal(a.captured, DNS_SNAP)
      t.equal(a.size, DNS_EVENT.payload + DNS_SNAP)
      const m = parseDns(a.payload)
      t.equal(m.qtype, TYPE_TXT)
      t.equal(m.qname, BIG_NAME, 'header and question survive the cut')
    }
  })

  t.test('glibc getaddrinfo (getent, python) through a private resolv.conf is attributed to the asking process', async t => {
    const dir = mkdtempSync(join(tmpdir(), 'picket-resolv-'))
    const conf = join(dir, 'resolv.conf')
    writeFileSync(conf, `nameserver ${DNS_V4}\noptions attempts:1 timeout:3\n`)
    // the bind mount lives only in unshare's private mount namespace; exec
    // keeps one pid from unshare to the resolver's process
    const inNs = async (cmd: string): Promise<number> => {
      const r = await run('unshare', ['-m', 'sh', '-c', `mount --bind ${conf} /etc/resolv.conf && echo $$ && exec ${cmd}`])
      if (r.code !== 0) throw new Error(`${cmd} failed (${r.code}): ${r.stdout}${r.stderr}`)
      return Number(r.stdout.split('\n')[0])
    }
    let getentPid = 0
    let pythonPid = 0
    const rs = await captured(probe, 'glibc.example.test', async () => {
      getentPid = await inNs('getent ahosts getent.glibc.example.test')
      pythonPid = await inNs('python3 -c "import socket; socket.getaddrinfo(\'python.glibc.example.test\', 80)"')
    })
    const by = (qname: string): DnsRecord[] => rs.filter(r => parseDns(r.payload).qname === qname)
    for (const [qname, pid, comm] of [['getent.glibc.example.test', getentPid, /^getent$/], ['python.glibc.example.test', pythonPid, /^python/]] as const) {
      const mine = by(qname)
      t.same(queries(mine).map(r => parseDns(r.payload).qtype).sort(), [TYPE_A, TYPE_AAAA], `${qname}: glibc asks A and AAAA`)
      t.equal(answers(mine).length, 2, `${qname}: two answers`)
      t.ok(mine.every(r => r.attributed && r.tgid === pid && comm.test(r.comm)), `${qname}: every record names pid ${pid} (${[...new Set(mine.map(r => `${r.tgid}/${r.comm}`))].join(', ')})`)
    }
  })

  t.test('every record was attributed and none dropped', async t => {
    const c = probe.counters()
    t.ok(c.dns.matched > 0)
    t.equal(c.dns.reserveFailed, 0)
    t.equal(c.dns.unattributed, 0)
  })
})

t.test('server side: queries arriving at port 53 and answers leaving it, the answer attributed to dnsmasq', async t => {
  if (!requireReal(t, { bpf: true, commands: ['dnsmasq', 'dig'] })) return
  const server = await startDnsmasq()
  t.teardown(server.stop)
  const probe = PacketProbe.open({ icmp6: false, dnsServerSide: true })
  t.teardown(() => probe.close())
  const rs = await captured(probe, 'server.example.test', async () => await dig([`@${DNS_V4}`, 'www.server.example.test', 'A']))
  t.equal(rs.length, 4, 'on loopback both sides of one exchange')
  const serverSide = rs.filter(r => r.lport === 53)
  t.same(serverSide.map(r => [r.skbDir, parseDns(r.payload).qr]).sort(), [[SKB_DIR.INGRESS, false], [SKB_DIR.EGRESS, true]].sort(), 'the query in, the answer out')
  const out = serverSide.find(r => r.skbDir === SKB_DIR.EGRESS)!
  t.ok(out.attributed && out.tgid === server.pid && out.comm === 'dnsmasq', 'dnsmasq answered with sendmsg(): attributed to it')
})

t.test('options are checked before anything is loaded', async t => {
  t.throws(() => PacketProbe.open({ dns: false, icmp6: false }), { code: 'PICKET_ERR_CONFIG' })
  t.throws(() => PacketProbe.open({ dnsRingBytes: 5000 }), { code: 'PICKET_ERR_CONFIG', message: /dnsRingBytes must be a power of two/ })
})
