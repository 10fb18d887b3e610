import t from 'tap'
import { spawn } from 'node:child_process'
import type { DecodeEnv } from '../../agent/normalize/types.js'
import { bootToWallNs } from '../../bpf/index.js'
import { PacketProbe } from '../../bpf/packet.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { ANSWER_V4, dig, DNS_V4, startDnsmasq } from '../helpers/dns.js'
import { requireReal } from '../helpers/env.js'
import { leanDecode } from '../helpers/lean.js'
import { recordsDuring } from '../helpers/ring.js'

// Resolver paths: a lookup through a local stub resolver (127.0.0.53, as
// systemd-resolved listens; here a second dnsmasq that forwards everything
// and caches nothing) and the stub's own query upstream. The client's query
// record names the client, not the stub; the stub's forwarded query names
// the stub. Both are seen, as a direct lookup is (dns-lookup.test.ts).

type Rec = Record<string, any>
const STUB = '127.0.0.53'
const src = { hostId: 'host-dns-stub', hostname: 'stub.example', agentVersion: '0.0.0-test' }
const shared = { metadata: makeMetadata(src), device: makeDevice(src) }

t.test('a lookup through a stub resolver: the query names the asking process; the forwarded one, the stub', async t => {
  if (!requireReal(t, { bpf: true, commands: ['dnsmasq', 'dig'] })) return
  const upstream = await startDnsmasq()
  t.teardown(upstream.stop)
  const stub = spawn('dnsmasq', ['-C', '/dev/null', '--keep-in-foreground', '--log-facility=-', '--pid-file=', '--no-resolv', '--no-hosts',
    '--bind-interfaces', `--listen-address=${STUB}`, '--port=53', `--server=${DNS_V4}`, '--cache-size=0', '--no-negcache'], { stdio: ['ignore', 'ignore', 'pipe'] })
  const stubExited = new Promise<void>(resolve => stub.once('exit', () => resolve()))
  t.teardown(async () => { stub.kill('SIGTERM'); await stubExited })
  let stderr = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the stub dnsmasq did not start: ${stderr}`)), 10_000)
    stub.stderr?.on('data', d => { stderr += String(d); if (/started, version/.test(stderr)) { clearTimeout(timer); resolve() } })
    stub.once('exit', code => { clearTimeout(timer); reject(new Error(`the stub dnsmasq exited ${code}: ${stderr}`)) })
  })
  const probe = PacketProbe.open({ icmp6: false })
  t.teardown(() => probe.close())
  const env: DecodeEnv = { bootToWallNs: bootToWallNs(), rstReasons: {}, noSocketReason: 0 }
  const name = 'via-stub.example.test'
  let digPid = 0
  const rs = (await recordsDuring(probe.ringFd, async () => {
    const r = await dig([`@${STUB}`, name, 'A'])
    digPid = r.pid
    t.match(r.stdout, new RegExp(ANSWER_V4.replace(/\./g, '\\.')), 'the stub forwarded the answer')
  }, (slab, bytes) => leanDecode(new Uint8Array(slab, 0, bytes), env, shared).objects as unknown as Rec[])).filter(r => r.query?.hostname === name)
  const toStub = rs.filter(r => r.activity_id === 1 && r.dst_endpoint?.ip === STUB)
  const upstreamQ = rs.filter(r => r.activity_id === 1 && r.dst_endpoint?.ip === DNS_V4)
  t.equal(toStub.length, 1, 'one query to the stub')
  t.equal(toStub[0]?.actor?.process?.pid, digPid, `it names dig (pid ${digPid}), the process that asked`)
  t.match(toStub[0]?.actor?.process?.name, /^(dig|isc-)/, 'dig, or the thread of it that sent the query')
  t.equal(upstreamQ.length, 1, 'one forwarded query upstream')
  t.equal(upstreamQ[0]?.actor?.process?.pid, stub.pid, `it names the stub (pid ${stub.pid}), not dig`)
  t.match(upstreamQ[0]?.actor?.process?.name, /dnsmasq/)
  const answers = rs.filter(r => r.activity_id === 2)
  t.equal(answers.length, 2, 'a response on each leg')
  t.ok(answers.every(r => r.answers?.some((a: Rec) => a.rdata === ANSWER_V4)), 'both carry the answer')
})
