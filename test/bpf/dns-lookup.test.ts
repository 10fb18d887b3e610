import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { takeDnsStats } from '../../agent/normalize/dns.js'
import type { DecodeEnv } from '../../agent/normalize/types.js'
import { bootToWallNs } from '../../bpf/index.js'
import { PacketProbe } from '../../bpf/packet.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { loadOcsfSchema, validateEvent } from '../../shared/ocsf/schema.js'
import { ANSWER_V4, ANSWER_V6, dig, DNS_V4, DNS_V6, startDnsmasq } from '../helpers/dns.js'
import { requireReal } from '../helpers/env.js'
import { leanDecode } from '../helpers/lean.js'
import { spawnPicket } from '../helpers/cli.js'
import { recordsDuring } from '../helpers/ring.js'
import { run } from '../helpers/scan.js'

// Lookups end to end through the kernel half (packet.bpf.c) and the agent's
// DNS normaliser (agent/normalize/dns.ts): dig, glibc's getaddrinfo (getent,
// python) against a real dnsmasq on loopback, over IPv4 and IPv6 transport.
// Each lookup gives exactly one Query and one Response dns_activity record
// per question, naming the process that asked; both validate.

type Rec = Record<string, any>
const schema = loadOcsfSchema()
const src = { hostId: 'host-dns-lookup', hostname: 'lookup.example', agentVersion: '0.0.0-test' }
const shared = { metadata: makeMetadata(src), device: makeDevice(src) }

t.test('lookups → dns_activity with the asking process', async t => {
  if (!requireReal(t, { bpf: true, commands: ['dnsmasq', 'dig', 'unshare', 'getent', 'python3'] })) return
  const server = await startDnsmasq()
  t.teardown(server.stop)
  const probe = PacketProbe.open({ icmp6: false })
  t.teardown(() => probe.close())
  const env: DecodeEnv = { bootToWallNs: bootToWallNs(), rstReasons: {}, noSocketReason: 0 }
  const normalised = async (suffix: string, fn: () => Promise<unknown>): Promise<Rec[]> => {
    const rs = await recordsDuring(probe.ringFd, fn, (slab, bytes) => leanDecode(new Uint8Array(slab, 0, bytes), env, shared).objects as unknown as Rec[])
    return rs.filter(r => String(r.query?.hostname).endsWith(suffix))
  }
  const dir = mkdtempSync(join(tmpdir(), 'picket-resolv-'))
  const inNs = async (server: string, cmd: string): Promise<number> => {
    const conf = join(dir, `resolv-${server.replace(/:/g, '_')}.conf`)
    writeFileSync(conf, `nameserver ${server}\noptions attempts:1 timeout:3\n`)
    const r = await run('unshare', ['-m', 'sh', '-c', `mount --bind ${conf} /etc/resolv.conf && echo $$ && exec ${cmd}`])
    if (r.code !== 0) throw new Error(`${cmd} failed (${r.code}): ${r.stdout}${r.stderr}`)
    return Number(r.stdout.split('\n')[0])
  }

  const check = (t: Tap.Test, rs: Rec[], o: { name: string, pid: number, comm: RegExp, types: string[], v6: boolean, server: string }): void => {
    for (const type of o.types) {
      const mine = rs.filter(r => r.query.hostname === o.name && r.query.type === type)
      const q = mine.filter(r => r.activity_id === 1)
      const a = mine.filter(r => r.activity_id === 2)
      t.equal(q.length, 1, `${o.name} ${type}: one query`)
      t.equal(a.length, 1, `${o.name} ${type}: one response`)
      if (q.length !== 1 || a.length !== 1) continue
      for (const r of [q[0], a[0]]) {
        t.equal(r.actor?.process?.pid, o.pid, `${r.type_name}: pid ${o.pid}`)
        t.match(r.actor?.process?.name, o.comm)
        t.equal(r.dst_endpoint.ip, o.server)
        t.equal(r.dst_endpoint.port, 53)
        t.equal(r.connection_info.protocol_ver_id, o.v6 ? 6 : 4)
        if (schema !== undefined) t.same(validateEvent(schema, r), [], `${r.type_name} validates`)
      }
      t.equal(a[0].query.packet_uid, q[0].query.packet_uid, 'the response carries the query\'s transaction id')
      t.equal(a[0].rcode_id, 0)
      t.same(a[0].answers.map((x: Rec) => x.rdata), [type === 'A' ? ANSWER_V4 : ANSWER_V6])
      t.equal(a[0].query_time, q[0].time, 'joined to its query: query_time')
      t.ok(a[0].duration >= 0 && a[0].duration < 3000, `response time ${a[0].duration} ms`)
    }
  }

  for (const [v6, server] of [[false, DNS_V4], [true, DNS_V6]] as const) {
    const fam = v6 ? 'v6' : 'v4'
    t.test(`dig over IPv${v6 ? 6 : 4}`, async t => {
      let pid = 0
      const name = `dig.${fam}.example.test`
      const rs = await normalised(`${fam}.example.test`, async () => { pid = (await dig([...(v6 ? ['-6'] : []), `@${server}`, name, 'A'])).pid })
      check(t, rs, { name, pid, comm: /^(dig|isc-)/, types: ['A'], v6, server })
    })
    t.test(`getent hosts (glibc) over IPv${v6 ? 6 : 4}`, async t => {
      let pid = 0
      const name = `getent.${fam}.example.test`
      const rs = await normalised(`${fam}.example.test`, async () => { pid = await inNs(server, `getent ahosts ${name}`) })
      check(t, rs, { name, pid, comm: /^getent$/, types: ['A', 'AAAA'], v6, server })
    })
    t.test(`python socket.getaddrinfo over IPv${v6 ? 6 : 4}`, async t => {
      let pid = 0
      const name = `python.${fam}.example.test`
      const rs = await normalised(`${fam}.example.test`, async () => { pid = await inNs(server, `python3 -c "import socket; socket.getaddrinfo('${name}', 80)"`) })
      check(t, rs, { name, pid, comm: /^python/, types: ['A', 'AAAA'], v6, server })
    })
  }
  t.test('nothing was malformed', async t => {
    t.match(takeDnsStats(), { malformed: 0, badRecord: 0, unjoined: 0 })
  })
})

t.test('picket capture --class dns prints the lookups of a process', async t => {
  if (!requireReal(t, { bpf: true, commands: ['dnsmasq', 'dig'] })) return
  const server = await startDnsmasq()
  t.teardown(server.stop)
  const p = spawnPicket(['capture', '--class', 'dns'], { env: { PICKET_TSX: '1' } })
  await p.waitFor(/capture: attached/, { timeoutMs: 60_000 })
  t.match(p.stderr(), /capture: attached [^;]*\bdns\b/, 'the dns class\'s packet probe is attached')
  const { pid } = await dig([`@${DNS_V4}`, 'capture.cli.example.test', 'A'])
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(await p.stop('SIGINT'), 0)
  const rs = p.stdout().split('\n').filter(l => l.length > 0).map(l => JSON.parse(l) as Rec)
  t.ok(rs.every(r => r.class_uid === 4003), 'dns_activity only')
  const mine = rs.filter(r => r.query?.hostname === 'capture.cli.example.test')
  t.same(mine.map(r => r.type_name).sort(), ['DNS Activity: Query', 'DNS Activity: Response'], 'captions filled in, as the backend reads them')
  t.ok(mine.every(r => r.actor?.process?.pid === pid), `dig's pid ${pid}`)
  t.match(p.stderr(), /capture-summary .*"ring_drops":\{[^}]*"dns":0/, 'the summary counts the dns ring\'s drops')
})
