import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { packValue } from '../../shared/codec.js'
import { badPath, expandBatch, expandRecord, packLean } from '../../shared/ocsf/lean.js'
import { makeDevice, makeMetadata, makeNetworkActivity, type NetFields } from '../../shared/ocsf/network.js'
import { loadOcsfSchema, validateEvent } from '../../shared/ocsf/schema.js'

// The lean wire form (shared/ocsf/lean.ts): the reference packer and the one
// expand function, on real network_activity records against OCSF 1.8.0.

const schema = loadOcsfSchema()
const src = { hostId: 'host-a', hostname: 'web-1.example', agentVersion: '0.1.0', ip: '10.0.0.5' }
const metadata = makeMetadata(src)
const device = makeDevice(src)

function net (i: number, over: Partial<NetFields> = {}): Record<string, unknown> {
  const f: NetFields = {
    activityId: 1, directionId: 2, protocolNum: 6, ipVersion: 4, srcIp: '127.0.0.66', srcPort: 40000 + i,
    dstIp: '127.0.0.1', dstPort: 1000 + i, assignmentKnown: true, statusDetail: 'RST', pid: 1234, tid: 1234,
    comm: 'nmap', timeMs: 1764450000000 + i, unmapped: { oldstate: 'SYN_SENT', newstate: 'CLOSE' }, ...over,
  }
  return JSON.parse(JSON.stringify(makeNetworkActivity(f, metadata, device))) as Record<string, unknown>
}

t.test('a mixed batch packs lean and expands back to the same OCSF objects, each valid', async t => {
  if (schema === undefined) return t.fail('the vendored OCSF 1.8.0 schema must load')
  const objs = [
    ...Array.from({ length: 50 }, (_, i) => net(i)),
    net(50, { ipVersion: 6, srcIp: '::1', dstIp: '::1', activityId: 2, directionId: 1 }),
    net(51, { srcIp: undefined, srcPort: 0, pid: undefined, comm: undefined, tid: undefined, statusDetail: undefined }),
    { ...net(52), device: { ...device, hostname: 'other' } },
  ]
  const lean = packLean(objs)
  t.equal(lean.context.shapes?.length, 3, 'one shape per distinct set of fields (IPv6 has the IPv4 fields; one has no source or actor; one has its own device)')
  t.same(Object.keys(lean.context.shared ?? {}), ['metadata', 'device'], 'metadata and device once per batch')
  const back = expandBatch(lean.context, lean.records, schema)
  t.equal(back.filter((o, i) => isDeepStrictEqual(o, objs[i])).length, objs.length, 'every record expands to the object it was packed from')
  t.same(back.flatMap(o => validateEvent(schema, o)), [], 'every expanded record validates against OCSF 1.8.0')
  const shape = lean.context.shapes?.[0] ?? []
  for (const caption of ['class_name', 'category_uid', 'category_name', 'activity_name', 'type_uid', 'type_name', 'severity', 'connection_info.direction', 'connection_info.protocol_ver', 'connection_info.protocol_name']) {
    t.notOk(shape.includes(caption), `${caption} is derived, not sent`)
  }
  const perRecord = (packValue(lean.context).length + packValue(lean.records).length) / objs.length
  const full = packValue(objs).length / objs.length
  t.ok(perRecord <= 160, `${perRecord.toFixed(0)} bytes per network record with the context, ${full.toFixed(0)} in the full form`)
})

t.test('a caption that differs from the schema\'s travels as it is', async t => {
  const o = { ...net(0), status_id: 99, status: 'Blocked by policy 7' }
  const lean = packLean([o])
  t.ok(lean.context.shapes?.[0].includes('status'), 'an "Other" status keeps its own caption')
  t.same(expandRecord(lean.context, lean.records[0]), o)
})

t.test('the older full form expands to itself with its captions', async t => {
  const o = net(1)
  const bare = { ...o }
  delete bare.class_name
  t.same(expandRecord({}, o), o)
  t.same(expandRecord({}, bare), o, 'a missing caption is filled in')
})

t.test('a shape cannot reach an object\'s prototype, and a bad record names its fault', async t => {
  for (const p of ['__proto__.polluted', 'a.constructor.prototype', 'a..b', '']) t.type(badPath(p), 'string', `'${p}' is refused`)
  t.throws(() => expandRecord({ shapes: [['__proto__.polluted']] }, [0, 1]), /__proto__/)
  t.equal(({} as Record<string, unknown>).polluted, undefined, 'no prototype was touched')
  t.throws(() => expandRecord({ shapes: [] }, [3, 1]), /shape 3 is not in the batch's context/)
  t.throws(() => expandRecord({ shapes: [['a']] }, [0, 1, 2]), /2 values for 1 fields/)
  t.throws(() => expandRecord({}, 'x'), /a record must be a map or a shaped array/)
})
