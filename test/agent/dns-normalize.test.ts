import t from 'tap'
import fc from 'fast-check'
import { encode, type Packet } from 'dns-packet'
import { takeDnsStats } from '../../agent/normalize/dns.js'
import { createNameCacheMemory, NameCache } from '../../agent/normalize/dns-names.js'
import type { DecodeEnv } from '../../agent/normalize/types.js'
import { DNS_EVENT, SKB_DIR } from '../../bpf/abi-dns.js'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { loadOcsfSchema, validateEvent } from '../../shared/ocsf/schema.js'
import { IN_CI } from '../helpers/env.js'
import { encodeDnsRecords, type RawDns } from '../helpers/dns-raw.js'
import { leanDecode } from '../helpers/lean.js'

// agent/normalize/dns.ts: raw DNS_EVENTS records → dns_activity (4003),
// expanded as the backend reads them and validated against OCSF 1.8.0; and a
// hostile payload corpus, which must be counted and skipped, never thrown.

const schema = loadOcsfSchema()
const src = { hostId: 'host-dns', hostname: 'dns.example', agentVersion: '0.0.0-test' }
const shared = { metadata: makeMetadata(src), device: makeDevice(src) }
const BOOT_TO_WALL_MS = 1_700_000_000_000
const env: DecodeEnv = { bootToWallNs: BOOT_TO_WALL_MS * 1e6, rstReasons: {}, noSocketReason: 1 }

type Rec = Record<string, any>
function decode (recs: RawDns[], e: DecodeEnv = env): { objects: Rec[], written: number, records: number, errors: number } {
  const { res, objects } = leanDecode(encodeDnsRecords(recs), e, shared)
  return { objects: objects as unknown as Rec[], written: res.written, records: res.records, errors: res.errors }
}

function valid (t: Tap.Test, r: Rec): void {
  if (schema === undefined) { if (IN_CI) t.fail('OCSF schema missing'); return }
  t.same(validateEvent(schema, r), [], `${String(r.type_name)} validates against OCSF 1.8.0`)
}

const query = (name: string, id = 0x1234, type: any = 'A'): Buffer => encode({ type: 'query', id, flags: 0x0100, questions: [{ type, name, class: 'IN' }] })
const answer = (name: string, id: number, answers: Packet['answers'], rcode = 0): Buffer =>
  encode({ type: 'response', id, flags: 0x8180 | rcode, questions: [{ type: 'A', name, class: 'IN' }], answers })

t.test('a query and its answer: dns_activity Query and Response; the kernel\'s join gives the response time', async t => {
  takeDnsStats()
  const names = new NameCache(createNameCacheMemory(16))
  const { objects: [q, a], written } = decode([
    { payload: query('www.example.org'), bootNs: 5_000_000_000n, tgid: 4242, pid: 4243, comm: 'curl' },
    {
      payload: answer('www.example.org', 0x1234, [
        { type: 'CNAME', name: 'www.example.org', ttl: 30, class: 'IN', data: 'edge.example.net' },
        { type: 'A', name: 'edge.example.net', ttl: 60, class: 'IN', data: '203.0.113.7' },
      ]),
      bootNs: 5_040_000_000n, queryNs: 5_000_000_000n, skbDir: SKB_DIR.INGRESS,
    },
  ], { ...env, names })
  t.equal(written, 2)
  t.match(q, {
    class_uid: 4003, activity_id: 1, type_uid: 400301, time: BOOT_TO_WALL_MS + 5000,
    query: { hostname: 'www.example.org', type: 'A', class: 'IN', packet_uid: 0x1234, opcode_id: 0 },
    src_endpoint: { ip: '10.0.0.5', port: 40000 }, dst_endpoint: { ip: '10.0.0.53', port: 53 },
    connection_info: { protocol_num: 17, direction_id: 2 },
    actor: { process: { pid: 4242, ptid: 4243, name: 'curl' }, user: { uid: '1000' } },
  })
  valid(t, q)
  t.match(a, {
    activity_id: 2, rcode_id: 0, rcode: 'NoError', query: { hostname: 'www.example.org', packet_uid: 0x1234 },
    query_time: BOOT_TO_WALL_MS + 5000, response_time: BOOT_TO_WALL_MS + 5040, duration: 40,
    src_endpoint: { ip: '10.0.0.5' }, dst_endpoint: { ip: '10.0.0.53' },
  })
  t.same(a.answers, [
    { type: 'CNAME', class: 'IN', rdata: 'edge.example.net', ttl: 30 },
    { type: 'A', class: 'IN', rdata: '203.0.113.7', ttl: 60 },
  ])
  valid(t, a)
  t.equal(names.get('203.0.113.7', BOOT_TO_WALL_MS + 5100), 'www.example.org', 'the answer names its address: the name the process asked for')
  t.match(takeDnsStats(), { decoded: 2, joined: 1, unjoined: 0, malformed: 0 })
})

t.test('IPv6 transport, NXDOMAIN, TXT, an answer with no query seen, an unattributed socket', async t => {
  const { objects: [a, b] } = decode([
    { payload: answer('nope.example.org', 9, [], 3), family: 10, skbDir: SKB_DIR.INGRESS, attributed: false, cookie: 5n },
    {
      payload: encode({ type: 'response', id: 10, flags: 0x8180, questions: [{ type: 'TXT', name: 't.example.org' }], answers: [{ type: 'TXT', name: 't.example.org', ttl: 5, data: ['v=spf1', '-all'] }] }),
      family: 10, cookie: 6n,
    },
  ])
  t.match(a, { rcode_id: 3, rcode: 'NXDomain', answers: [], src_endpoint: { ip: 'fd00::5' }, dst_endpoint: { ip: 'fd00::53' }, connection_info: { protocol_ver_id: 6 } })
  t.equal(a.actor, undefined, 'no hook saw the socket: no process')
  t.equal(a.query_time, undefined, 'the kernel saw no query: no query time')
  valid(t, a)
  t.match(b.answers, [{ type: 'TXT', rdata: 'v=spf1 -all' }])
  valid(t, b)
  t.match(takeDnsStats(), { unjoined: 2 })
})

t.test('the server\'s side: port 53 is this host\'s, the client is the remote end', async t => {
  const { objects: [q] } = decode([{ payload: query('in.example.org'), lport: 53, rport: 33333, laddr: '10.0.0.53', raddr: '10.0.0.9', skbDir: SKB_DIR.INGRESS }])
  t.match(q, { src_endpoint: { ip: '10.0.0.9', port: 33333 }, dst_endpoint: { ip: '10.0.0.53', port: 53 }, connection_info: { direction_id: 1 } })
  valid(t, q)
})

t.test('an answer cut at the snap length keeps its question and the answers that fit', async t => {
  const txt = ['a', 'b', 'c', 'd'].map(c => ({ type: 'TXT' as const, name: 'big.example.org', ttl: 1, data: c.repeat(250) }))
  const full = encode({ type: 'response', id: 3, flags: 0x8180, questions: [{ type: 'TXT', name: 'big.example.org' }], answers: txt })
  t.ok(full.length > 512)
  takeDnsStats()
  const { objects: [a], written } = decode([{ payload: full, skbDir: SKB_DIR.INGRESS }])
  t.equal(written, 1)
  t.equal(a.query.hostname, 'big.example.org')
  t.equal(a.answers.length, 1, 'one 250-byte string fits in 512 bytes, two do not')
  t.equal(a.unmapped.dns_len, full.length)
  t.match(takeDnsStats(), { cut: 1, decoded: 1 })
  valid(t, a)
})

/** A name's wire form from raw label bytes. */
const wireName = (...labels: Uint8Array[]): Uint8Array => Buffer.concat([...labels.flatMap(l => [Buffer.from([l.length]), Buffer.from(l)]), Buffer.from([0])])
const header = (id: number, flags: number, qd: number, an: number): Buffer => {
  const h = Buffer.alloc(12)
  h.writeUInt16BE(id, 0); h.writeUInt16BE(flags, 2); h.writeUInt16BE(qd, 4); h.writeUInt16BE(an, 6)
  return h
}
const qtail = Buffer.from([0, 1, 0, 1])

/** Hand-made hostile messages: each must be skipped and counted. */
function hostileCorpus (): Array<[string, Uint8Array]> {
  const good = query('www.example.org')
  const out: Array<[string, Uint8Array]> = []
  for (let n = 0; n < good.length; n++) out.push([`truncated to ${n} bytes`, good.subarray(0, n)])
  out.push(['pointer to itself', Buffer.concat([header(1, 0x100, 1, 0), Buffer.from([0xc0, 12]), qtail])])
  out.push(['pointer forward', Buffer.concat([header(1, 0x100, 1, 0), Buffer.from([0xc0, 16]), qtail, Buffer.from([0])])])
  out.push(['pointers in a loop', Buffer.concat([header(1, 0x100, 1, 0), Buffer.from([1, 0x61, 0xc0, 14, 1, 0x62, 0xc0, 12]), qtail])])
  out.push(['pointer past the end', Buffer.concat([header(1, 0x100, 1, 0), Buffer.from([0xff, 0xff]), qtail])])
  out.push(['a label of 64 bytes (extended label type)', Buffer.concat([header(1, 0x100, 1, 0), Buffer.from([64]), Buffer.alloc(64, 0x61), Buffer.from([0]), qtail])])
  const long = Array.from({ length: 5 }, () => Buffer.alloc(63, 0x61))
  out.push(['a name of 320 bytes', Buffer.concat([header(1, 0x100, 1, 0), wireName(...long), qtail])])
  out.push(['65535 questions claimed', Buffer.concat([header(1, 0x100, 0xffff, 0), wireName(Buffer.from('a')), qtail])])
  out.push(['no question', header(1, 0x100, 0, 0)])
  out.push(['an answer whose rdlength runs past the end', Buffer.concat([header(1, 0x8180, 1, 1), wireName(Buffer.from('a')), qtail, Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0xff, 0xff, 1, 2])])])
  out.push(['empty', Buffer.alloc(0)])
  return out
}

t.test('hostile payloads are counted and skipped; the records around them survive', async t => {
  const corpus = hostileCorpus()
  takeDnsStats()
  const recs: RawDns[] = corpus.flatMap(([, payload]) => [{ payload }, { payload: query('ok.example.org') }])
  let out: ReturnType<typeof decode> | undefined
  t.doesNotThrow(() => { out = decode(recs) })
  t.equal(out?.written, corpus.length, 'every good record between them is written')
  t.ok(out?.objects.every(o => o.query.hostname === 'ok.example.org'), 'and only those')
  const s = takeDnsStats()
  t.equal(s.malformed, corpus.length, `each of the ${corpus.length} hostile payloads counted (${corpus.map(c => c[0]).slice(-11).join('; ')})`)
})

t.test('a record whose captured length does not fit its size is counted, the batch goes on', async t => {
  const buf = encodeDnsRecords([{ payload: query('a.example.org') }, { payload: query('b.example.org') }])
  new DataView(buf.buffer).setUint16(DNS_EVENT.captured, 400, true) // captured 400 in a record of 160 bytes
  takeDnsStats()
  const { res, objects } = leanDecode(buf, env, shared)
  t.equal(res.written, 1)
  t.equal((objects[0] as unknown as Rec).query.hostname, 'b.example.org')
  t.match(takeDnsStats(), { badRecord: 1 })
})

t.test('fuzz: random bytes, and valid messages with random bytes flipped, never throw', async t => {
  const base = [...query('fuzz.example.org', 7), ...answer('fuzz.example.org', 7, [{ type: 'A', name: 'fuzz.example.org', ttl: 1, data: '192.0.2.1' }])]
  takeDnsStats()
  fc.assert(fc.property(
    fc.oneof(
      fc.uint8Array({ maxLength: 600 }),
      fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }).map(flips => {
        const b = Uint8Array.from(base.slice(0, query('fuzz.example.org', 7).length))
        for (const [i, v] of flips) if (i < b.length) b[i] = v
        return b
      }),
    ),
    fc.boolean(),
    (payload, cut) => {
      const r = decode([{ payload, dnsLen: cut ? payload.length + 100 : payload.length }, { payload: query('after.example.org') }])
      return r.objects.at(-1)?.query.hostname === 'after.example.org'
    },
  ), { numRuns: 2000, seed: 14 })
  const s = takeDnsStats()
  t.ok(s.malformed > 0 && s.decoded > 2000, `decoded ${s.decoded}, malformed ${s.malformed}`)
})
