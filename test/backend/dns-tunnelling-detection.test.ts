import t from 'tap'
import { encode, type Packet } from 'dns-packet'
import type { DecodeEnv } from '../../agent/normalize/types.js'
import { SKB_DIR } from '../../bpf/abi-dns.js'
import { registeredDomain } from '../../backend/detection/derived.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { encodeDnsRecords, type RawDns } from '../helpers/dns-raw.js'
import { leanDecode } from '../helpers/lean.js'
import { EngineRig, type WireBatch } from './helpers/records.js'

// The DNS tunnelling rule (backend/rules/dns_tunnelling.yml) on records made
// by the agent's own DNS normaliser, sent as the lean batches it sends: an
// iodine-like client gives exactly one finding naming the process and the
// domain with sampled queries; ordinary lookups give none.

const RULE = 'picket_dns_tunnelling'
const NOW = 1_800_000_000_000
// boot time 0 = the epoch: a record's boot_ns is its wall-clock time
const env: DecodeEnv = { bootToWallNs: 0, rstReasons: {}, noSocketReason: 1 }

/** A deterministic generator, so a failure can be replayed. */
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; return s / 2 ** 32 }
}

interface Lookup { name: string, type?: string, atMs: number, comm?: string, answer?: Packet['answers'], rcode?: number }

/** The lookups as the agent's batches: each a query and its answer, through the DNS normaliser. */
function batches (hostId: string, lookups: Lookup[], perBatch = 200): WireBatch[] {
  const src = { hostId, hostname: hostId, agentVersion: 'test' }
  const shared = { metadata: makeMetadata(src), device: makeDevice(src) }
  const out: WireBatch[] = []
  for (let i = 0; i < lookups.length; i += perBatch) {
    const recs: RawDns[] = lookups.slice(i, i + perBatch).flatMap((l, j) => {
      const id = (i + j) & 0xffff
      const question = [{ type: (l.type ?? 'A') as 'A', name: l.name, class: 'IN' as const }]
      const bootNs = BigInt(l.atMs) * 1_000_000n
      const common = { comm: l.comm ?? 'curl', tgid: 777, pid: 777, cookie: BigInt(1000 + (i + j) % 7), lport: 40000 + (i + j) % 1000 }
      return [
        { ...common, payload: encode({ type: 'query', id, flags: 0x0100, questions: question }), bootNs },
        { ...common, payload: encode({ type: 'response', id, flags: 0x8180 | (l.rcode ?? 0), questions: question, answers: l.answer ?? [] }), bootNs: bootNs + 2_000_000n, queryNs: bootNs, skbDir: SKB_DIR.INGRESS },
      ]
    })
    const { w, spans, res } = leanDecode(encodeDnsRecords(recs), env, shared)
    if (res.written !== recs.length) throw new Error(`the normaliser wrote ${res.written} of ${recs.length}`)
    for (const s of spans) {
      out.push({ bytes: Buffer.from(w.buffer.subarray(s.offset, s.offset + s.length)), context: Buffer.from(w.buffer.subarray(s.contextOffset, s.contextOffset + s.contextLength)), count: s.count })
    }
  }
  return out
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

t.test('the registered domain comes from the Public Suffix List', async t => {
  t.equal(registeredDomain('a.b.tunnel.example.com'), 'example.com')
  t.equal(registeredDomain('www.bbc.co.uk.'), 'bbc.co.uk', 'a multi-label public suffix; the root dot dropped')
  t.equal(registeredDomain('foo.github.io'), 'foo.github.io', 'a private suffix: each tenant is a domain of its own')
  t.equal(registeredDomain('co.uk'), undefined, 'a bare suffix has none')
})

t.test('an iodine-like client: 300 random base32 label queries under one domain in a minute → exactly one finding', async t => {
  const rig = new EngineRig()
  const r = rng(14)
  const lookups: Lookup[] = Array.from({ length: 300 }, (_, i) => {
    let label = ''
    for (let k = 0; k < 52; k++) label += B32[Math.floor(r() * 32)]
    label = label.slice(0, 51) + String(2 + (i % 6)) // never a digit-free label
    return { name: `${label}.t.tunnel-example.com`, type: i % 3 === 0 ? 'NULL' : 'A', atMs: NOW - 60_000 + i * 200, comm: 'iodine' }
  })
  for (const b of batches('host-tun', lookups)) t.match(rig.sendBatch('host-tun', b, NOW), { status: 'accepted' })
  rig.tick(NOW + 1000)
  const created = rig.of(RULE).filter(f => f.activity === 'create')
  t.equal(created.length, 1, 'one incident, one finding')
  t.equal(rig.findings.filter(f => f.activity === 'create').length, 1, 'and no other rule fired')
  const f = created[0]
  t.match(f.finding.finding_info.title, /tunnel-example\.com/, 'names the domain')
  t.match(f.finding.finding_info.title, /iodine/, 'names the process')
  const text = JSON.stringify(f.finding)
  const picket = (f.finding.unmapped as { picket: { values: Array<{ value: string, count: number }>, values_total: number } }).picket
  t.equal(picket.values.length, 20, 'a sample of the queries')
  t.ok(picket.values.every(v => /^[a-z2-7]{51}[2-7]\.t\.tunnel-example\.com$/.test(v.value)), 'each one of the client\'s names')
  t.equal(picket.values_total, 100, 'of the distinct names that crossed the threshold')
  t.match(f.finding.message, /100 distinct query\.hostname/)
  t.ok(f.finding.evidences?.length && f.finding.evidences.every(e => (e.data as { class_uid: number }).class_uid === 4003), 'the evidence records are the DNS queries')
  t.ok(f.finding.evidences!.every(e => /^[a-z2-7]{51}[2-7]\.t\.tunnel-example\.com$/.test(String((e as { query?: { hostname?: string } }).query?.hostname))), 'each evidence shows the query name')
  t.notOk(text.includes('ports probed'), 'not worded as a port scan')
  t.equal(f.summary.hostId, 'host-tun')
})

t.test('benign: 2,000 lookups of 100 ordinary names (CNAME chains, NXDOMAINs, TXT) → no finding', async t => {
  const rig = new EngineRig()
  const sites = ['example.com', 'example.org', 'wikipedia.org', 'github.com', 'debian.org', 'bbc.co.uk', 'npmjs.com', 'ubuntu.com', 'kernel.org', 'python.org']
  const hosts = ['www', 'api', 'mail', 'cdn', 'static', 'login', 'docs', 'images', 'download', 'status']
  const names = sites.flatMap(s => hosts.map(h => `${h}.${s}`))
  t.equal(names.length, 100)
  const r = rng(7)
  const lookups: Lookup[] = Array.from({ length: 2000 }, (_, i) => {
    const name = names[Math.floor(r() * names.length)]
    const kind = i % 10
    const answer: Packet['answers'] = kind < 6
      ? [{ type: 'CNAME', name, ttl: 300, class: 'IN', data: `edge-${i % 4}.cdn-provider.net` }, { type: 'CNAME', name: `edge-${i % 4}.cdn-provider.net`, ttl: 60, class: 'IN', data: `e${i % 4}.a.cdn-provider.net` }, { type: 'A', name: `e${i % 4}.a.cdn-provider.net`, ttl: 20, class: 'IN', data: `192.0.2.${i % 200}` }]
      : []
    return { name: kind === 9 ? `_dmarc.${name.split('.').slice(1).join('.')}` : name, type: kind === 9 ? 'TXT' : 'A', rcode: kind === 8 ? 3 : 0, atMs: NOW - 120_000 + i * 60, comm: ['curl', 'firefox', 'apt'][i % 3] }
  })
  for (const b of batches('host-ok', lookups)) t.match(rig.sendBatch('host-ok', b, NOW), { status: 'accepted' })
  rig.tick(NOW + 1000)
  t.equal(rig.findings.length, 0, 'no finding')
  t.equal(rig.engine.stats.records, 4000, 'every query and answer was read')
})
