import t from 'tap'
import { unpackRecords, unpackValue } from '../../shared/codec.js'
import { DEVICE_TYPE_NAME, DIRECTION, DIRECTION_NAME, NET_ACTIVITY_NAME } from '../../shared/ocsf/constants.js'
import { expandRecord, type LeanContext } from '../../shared/ocsf/lean.js'
import { makeDevice, makeMetadata, makeNetworkActivity } from '../../shared/ocsf/network.js'
import { loadOcsfSchema } from '../../shared/ocsf/schema.js'
import { EngineRig, pack, ports } from './helpers/records.js'

// A finding's evidence is what the records said: every value it shows is the
// value of the expanded record (shared/ocsf/lean.ts expandRecord), the
// device from the batch's shared context included, with the captions the
// OCSF schema gives them.

t.test('the caption tables evidence uses are the schema\'s', async t => {
  const schema = loadOcsfSchema()
  if (schema === undefined) return t.fail('the vendored OCSF 1.8.0 schema must load')
  const table = (m: ReadonlyMap<string, string> | undefined): Record<number, string> => Object.fromEntries([...(m ?? [])].map(([k, v]) => [Number(k), v]))
  t.same(DEVICE_TYPE_NAME, table(schema.objects.get('device')?.attrs.get('type_id')?.enumCaptions), 'device.type_id')
  t.same(DIRECTION_NAME, table(schema.objects.get('network_connection_info')?.attrs.get('direction_id')?.enumCaptions), 'connection_info.direction_id')
  t.same(NET_ACTIVITY_NAME, table(schema.classes.get(4001)?.attrs.get('activity_id')?.enumCaptions), 'network_activity activity_id')
})

t.test('each evidence record of a finding is the expanded record it came from', async t => {
  const host = 'ev-host'
  const src = { hostId: host, hostname: 'vm-7.example', agentVersion: 'test', ip: '10.7.0.7' }
  const device = { ...makeDevice(src), type_id: 6, type: 'Virtual' }
  const T0 = Date.now()
  const records = ports(20, 5000).map((port, i) => makeNetworkActivity({
    timeMs: T0 + i, activityId: 5, directionId: DIRECTION.INBOUND, protocolNum: 17, ipVersion: 4,
    srcIp: '198.51.100.44', srcPort: 53000 + i, dstIp: '10.7.0.7', dstPort: port, assignmentKnown: true,
  }, makeMetadata(src), device))
  const b = pack(records)
  const rig = new EngineRig()
  t.same(rig.sendBatch(host, b, T0), { status: 'accepted', records: 20 })
  rig.engine.flush(T0 + 1000)
  const f = [...rig.findings, ...rig.engine.drain().findings].find(x => x.summary.rule === 'picket_t1046_port_scan')
  t.ok(f !== undefined, 'the scan is found')
  const expanded = unpackRecords(b.bytes).map(r => expandRecord(unpackValue(b.context) as LeanContext, r))
  const evs = (f?.finding.evidences ?? []) as Array<Record<string, any>>
  t.ok(evs.length > 0)
  for (const ev of evs) {
    const x = expanded.find(e => (e.dst_endpoint as { port: number }).port === ev.dst_endpoint.port) as Record<string, any>
    t.same({
      src_endpoint: ev.src_endpoint,
      dst_endpoint: ev.dst_endpoint,
      device: ev.device,
      connection_info: ev.connection_info,
      data: ev.data,
    }, {
      src_endpoint: x.src_endpoint,
      dst_endpoint: x.dst_endpoint,
      device: { type_id: x.device.type_id, type: x.device.type, uid: x.device.uid, hostname: x.device.hostname },
      connection_info: { direction_id: x.connection_info.direction_id, direction: x.connection_info.direction, protocol_num: x.connection_info.protocol_num, protocol_name: x.connection_info.protocol_name },
      data: { time: x.time, class_uid: x.class_uid, activity_id: x.activity_id, activity_name: x.activity_name },
    }, `port ${String(ev.dst_endpoint.port)}: as the expanded record says`)
  }
})

t.test('an observable names where its value is, with the type id the schema gives that field', async t => {
  const schema = loadOcsfSchema()
  if (schema === undefined) return t.fail('the vendored OCSF 1.8.0 schema must load')
  const host = 'obs-host'
  const src = { hostId: host, hostname: 'vm-8.example', agentVersion: 'test', ip: '10.7.0.8' }
  const T0 = Date.now()
  // 60 sources: more than the evidence sample keeps, so some sources are only counted
  const records = ports(60, 6000).map((port, i) => makeNetworkActivity({
    timeMs: T0 + i, activityId: 5, directionId: DIRECTION.INBOUND, protocolNum: 6, ipVersion: 4,
    srcIp: `198.51.100.${i + 1}`, srcPort: 40000 + i, dstIp: '10.7.0.8', dstPort: port, assignmentKnown: true,
  }, makeMetadata(src), makeDevice(src)))
  const rig = new EngineRig()
  rig.sendBatch(host, pack(records), T0)
  rig.engine.flush(T0 + 1000)
  const fs = [...rig.findings, ...rig.engine.drain().findings]
  t.ok(fs.length > 0, 'the probes are found')
  const captions = schema.objects.get('observable')?.attrs.get('type_id')?.enumCaptions
  for (const f of fs) {
    const obs = (f.finding.observables ?? []) as Array<{ name: string, type_id: number, value: string }>
    const evIps = new Set(((f.finding.evidences ?? []) as Array<Record<string, any>>).map(e => e.src_endpoint?.ip))
    const device = obs.find(o => o.name === 'device.uid')
    if (device !== undefined) {
      t.equal(device.type_id, 47, `${f.summary.rule}: device.uid is observable 47, as device.json gives it`)
      t.equal((device as { type?: string }).type, captions?.get('47'), 'with the schema\'s caption')
    }
    const ips = obs.filter(o => o.name === 'evidences.src_endpoint.ip')
    t.ok(ips.length > 0, `${f.summary.rule}: names sources`)
    for (const o of ips) t.ok(evIps.has(o.value), `${f.summary.rule}: source ${o.value} is in the evidence sample`)
  }
})

