import t from 'tap'
import { Worker } from 'node:worker_threads'
import { createNameCacheMemory, ipToBytes, NAME_MIN_KEEP_MS, NameCache } from '../../agent/normalize/dns-names.js'
import { AF_INET, AF_INET6, KDIR, KIND, NET_EVENT, RST_REASON_UNKNOWN, TCP } from '../../bpf/abi.js'
import { encodeNetRecord, type RawNetRecord } from '../../bpf/records.js'
import type { DecodeEnv } from '../../agent/normalize/types.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { loadOcsfSchema, validateEvent } from '../../shared/ocsf/schema.js'
import { workerScript } from '../../shared/worker-script.js'
import { leanDecode } from '../helpers/lean.js'

// Names on connections: the host-wide answer address → name table every
// decode worker shares (agent/normalize/dns-names.ts), and the network
// normaliser's use of it (outbound opens carry dst_endpoint.hostname).

t.test('addresses in their 16-byte form', async t => {
  const b = new Uint8Array(16)
  t.ok(ipToBytes('192.0.2.7', b)); t.same([...b], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 192, 0, 2, 7])
  t.ok(ipToBytes('2001:db8::7', b)); t.same([...b], [0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7])
  t.ok(ipToBytes('::ffff:192.0.2.7', b)); t.same([...b.subarray(10)], [255, 255, 192, 0, 2, 7])
  t.ok(ipToBytes('::', b)); t.same([...b], new Array(16).fill(0))
  t.ok(ipToBytes('1:2:3:4:5:6:7:8', b)); t.equal(b[15], 8)
  for (const bad of ['', '1.2.3', '1.2.3.256', 'a.b.c.d', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fffff::', 'evil.example']) t.notOk(ipToBytes(bad, b), `refuses ${JSON.stringify(bad)}`)
})

t.test('put and get, kept at least NAME_MIN_KEEP_MS whatever the TTL, then gone', async t => {
  const c = new NameCache(createNameCacheMemory(64))
  c.put('203.0.113.7', 'evil.example', 0, 1000)
  c.put('2001:db8::7', 'six.example', 3600, 1000)
  t.equal(c.get('203.0.113.7', 1040), 'evil.example')
  t.equal(c.get('::ffff:203.0.113.7', 1040), 'evil.example', 'IPv4-mapped is the same address')
  t.equal(c.get('2001:db8::7', 1040), 'six.example')
  t.equal(c.get('203.0.113.8', 1040), undefined)
  t.equal(c.get('203.0.113.7', 1000 + NAME_MIN_KEEP_MS + 1), undefined, 'TTL 0 is kept for the floor, not forever')
  c.put('203.0.113.7', 'other.example', 0, 2000)
  t.equal(c.get('203.0.113.7', 2001), 'other.example', 'the latest answer wins')
  t.match(c.stats(), { inserts: 2, updates: 1, evictions: 0, contended: 0, slots: 256 })
  t.throws(() => createNameCacheMemory(3), /power of two/)
  t.throws(() => new NameCache(new SharedArrayBuffer(100)), /not a name cache/)
})

t.test('bounded: a full bucket evicts its oldest entry, counted', async t => {
  const c = new NameCache(createNameCacheMemory(1)) // one bucket of 4 slots
  for (let i = 1; i <= 4; i++) c.put(`10.0.0.${i}`, `n${i}.example`, 60, i)
  c.put('10.0.0.5', 'n5.example', 60, 5)
  t.equal(c.get('10.0.0.1', 6), undefined, 'the oldest went')
  t.same([2, 3, 4, 5].map(i => c.get(`10.0.0.${i}`, 6)), ['n2.example', 'n3.example', 'n4.example', 'n5.example'])
  t.match(c.stats(), { inserts: 5, evictions: 1, slots: 4 })
  c.put('10.0.0.9', 'x'.repeat(400), 60, 7)
  t.equal(c.get('10.0.0.9', 8)?.length, 253, 'a name is cut at 253 bytes')
})

t.test('workers share it with no affinity: no torn name is ever read', async t => {
  const memory = createNameCacheMemory(2) // 8 slots for 8 addresses: the same slots, written all the time
  const ws = workerScript(new URL('../fixtures/name-cache-worker.ts', import.meta.url))
  const results = await Promise.all(['a', 'b', 'c'].map(async letter => await new Promise<{ reads: number, hits: number, torn: number }>((resolve, reject) => {
    const w = new Worker(ws.script, { eval: ws.eval, workerData: { memory, ms: 700, letter } })
    w.once('message', resolve)
    w.once('error', reject)
  })))
  const sum = results.reduce((a, r) => ({ reads: a.reads + r.reads, hits: a.hits + r.hits, torn: a.torn + r.torn }), { reads: 0, hits: 0, torn: 0 })
  t.ok(sum.hits > 1000, `${sum.hits} of ${sum.reads} reads found a name`)
  t.equal(sum.torn, 0, 'never a mix of two writes')
  t.comment(JSON.stringify(new NameCache(memory).stats()))
})

const src = { hostId: 'host-names', hostname: 'names.example', agentVersion: '0.0.0-test' }
const shared = { metadata: makeMetadata(src), device: makeDevice(src) }
const base: RawNetRecord = {
  kind: KIND.NET_STATE, cpu: 0, bootNs: 5_000_000_000n, pid: 4242, tgid: 4242, comm: 'bash', family: AF_INET,
  laddr: '10.1.1.1', raddr: '203.0.113.7', lport: 0, rport: 443, protocol: 6, direction: KDIR.OUTBOUND,
  oldstate: TCP.CLOSE, newstate: TCP.SYN_SENT, icmpType: 0, icmpCode: 0, reason: RST_REASON_UNKNOWN, sock: 1n, durationNs: 0n,
}

t.test('network records: an outbound open to an answered address carries dst_endpoint.hostname', async t => {
  const schema = loadOcsfSchema()
  const names = new NameCache(createNameCacheMemory(64))
  const wall = 1_700_000_000_000
  const env: DecodeEnv = { bootToWallNs: wall * 1e6, rstReasons: {}, noSocketReason: 1, names }
  names.put('203.0.113.7', 'evil.example', 0, wall + 4960) // answered 40 ms before the connect
  names.put('2001:db8::7', 'six.example', 0, wall + 4960)
  const recs: Array<Partial<RawNetRecord>> = [
    {},
    { family: AF_INET6, laddr: 'fd00::1', raddr: '2001:db8::7' },
    { raddr: '203.0.113.8' },
    { oldstate: TCP.SYN_RECV, newstate: TCP.ESTABLISHED, direction: KDIR.INBOUND, lport: 22, rport: 50000 },
    { protocol: 253 },
  ]
  const buf = new Uint8Array(NET_EVENT.SIZEOF * recs.length)
  recs.forEach((r, i) => encodeNetRecord({ ...base, ...r }, buf, i * NET_EVENT.SIZEOF))
  const objects = leanDecode(buf, env, shared).objects as unknown as Array<Record<string, any>>
  t.same(objects[0].dst_endpoint, { ip: '203.0.113.7', port: 443, hostname: 'evil.example' }, 'the name and the address')
  t.match(objects[0], { actor: { process: { pid: 4242, name: 'bash' } }, activity_id: 1 })
  t.equal(objects[1].dst_endpoint.hostname, 'six.example', 'IPv6')
  t.equal(objects[2].dst_endpoint.hostname, undefined, 'an address no answer gave')
  t.equal(objects[3].dst_endpoint.hostname, undefined, 'inbound: the remote end is the source, nothing to name')
  t.match(objects[4], { dst_endpoint: { hostname: 'evil.example' }, connection_info: { protocol_name: 'unknown' } }, 'with an unknown protocol too')
  const plain = leanDecode(buf, { ...env, names: undefined }, shared).objects as unknown as Array<Record<string, any>>
  t.same(plain[0].dst_endpoint, { ip: '203.0.113.7', port: 443 }, 'without a cache: as before')
  if (schema !== undefined) for (const o of objects) t.same(validateEvent(schema, o), [], `${String(o.type_name)} validates`)
})
