import type { NetworkActivity, OcsfConnectionInfo, OcsfNetworkEndpoint } from '../../shared/ocsf/types.js'
import { MsgpackWriter } from './pack.js'

// network_activity → msgpack with named property reads. Every key of the
// NetworkActivity type is listed below (the compiler checks that the list is
// complete), so a field added to the type cannot be skipped silently; and
// packNetBatch re-counts a sample of records the generic way and falls back
// to the generic writer if a record carries a key the type does not declare.

const NET_KEYS = {
  class_uid: 1, class_name: 1, category_uid: 1, category_name: 1, activity_id: 1, activity_name: 1,
  type_uid: 1, type_name: 1, severity_id: 1, severity: 1, time: 1, start_time: 1, duration: 1,
  status_id: 1, status: 1, status_code: 1, status_detail: 1, message: 1, metadata: 1, device: 1,
  actor: 1, src_endpoint: 1, dst_endpoint: 1, connection_info: 1, is_src_dst_assignment_known: 1, unmapped: 1,
} as const satisfies Record<keyof NetworkActivity, 1>
const ENDPOINT_KEYS = { ip: 1, port: 1, hostname: 1, uid: 1, svc_name: 1 } as const satisfies Record<keyof OcsfNetworkEndpoint, 1>
const CONN_KEYS = {
  direction_id: 1, direction: 1, protocol_num: 1, protocol_name: 1, protocol_ver_id: 1, protocol_ver: 1, uid: 1, tcp_flags: 1,
} as const satisfies Record<keyof OcsfConnectionInfo, 1>
void NET_KEYS; void ENDPOINT_KEYS; void CONN_KEYS

/** msgpack encodings of every key written below */
const K = encodeKeys(['activity_id', 'activity_name', 'actor', 'category_name', 'category_uid', 'class_name', 'class_uid', 'connection_info', 'device', 'direction', 'direction_id', 'dst_endpoint', 'duration', 'hostname', 'ip', 'is_src_dst_assignment_known', 'message', 'metadata', 'port', 'protocol_name', 'protocol_num', 'protocol_ver', 'protocol_ver_id', 'severity', 'severity_id', 'src_endpoint', 'start_time', 'status', 'status_code', 'status_detail', 'status_id', 'svc_name', 'tcp_flags', 'time', 'type_name', 'type_uid', 'uid', 'unmapped'] as const)

function encodeKeys<const T extends readonly string[]> (keys: T): Record<T[number], Uint8Array> {
  const w = new MsgpackWriter(64)
  const out: Record<string, Uint8Array> = {}
  for (const k of keys) { w.reset(); w.str(k); out[k] = w.finish() }
  return out as Record<T[number], Uint8Array>
}

function d (v: unknown): number {
  return v === undefined ? 0 : 1
}

function countKeys (o: object): number {
  let n = 0
  for (const k in o) if ((o as Record<string, unknown>)[k] !== undefined) n++
  return n
}

function writeEndpoint (w: MsgpackWriter, e: OcsfNetworkEndpoint): void {
  w.mapHeader(d(e.ip) + d(e.port) + d(e.hostname) + d(e.uid) + d(e.svc_name))
  if (e.ip !== undefined) { w.raw(K.ip); w.str(e.ip) }
  if (e.port !== undefined) { w.raw(K.port); w.num(e.port) }
  if (e.hostname !== undefined) { w.raw(K.hostname); w.str(e.hostname) }
  if (e.uid !== undefined) { w.raw(K.uid); w.str(e.uid) }
  if (e.svc_name !== undefined) { w.raw(K.svc_name); w.str(e.svc_name) }
}

// Runs of fields whose values repeat from record to record (class and
// category; activity, type and severity; connection_info) are encoded once
// and copied while every value is === the remembered one.
interface Memo { v: unknown[], bytes: Uint8Array }

function memoHit (m: Memo | undefined, a: unknown, b: unknown, c: unknown, e: unknown, f: unknown, g: unknown): m is Memo {
  if (m === undefined) return false
  const v = m.v
  return v[0] === a && v[1] === b && v[2] === c && v[3] === e && v[4] === f && v[5] === g
}

let headMemo: Memo | undefined
const activityMemo: Array<Memo | undefined> = []
const connMemo = new Map<number, Memo>()

function writeConn (w: MsgpackWriter, c: OcsfConnectionInfo): void {
  const key = c.direction_id * 1_000_000 + (c.protocol_num ?? 999) * 100 + (c.protocol_ver_id ?? 99)
  const m = connMemo.get(key)
  if (memoHit(m, c.direction, c.protocol_name, c.protocol_ver, c.uid, c.tcp_flags, c.protocol_num)) { w.raw(m.bytes); return }
  const start = w.length
  w.mapHeader(1 + d(c.direction) + d(c.protocol_num) + d(c.protocol_name) + d(c.protocol_ver_id) + d(c.protocol_ver) + d(c.uid) + d(c.tcp_flags))
  w.raw(K.direction_id); w.num(c.direction_id)
  if (c.direction !== undefined) { w.raw(K.direction); w.str(c.direction) }
  if (c.protocol_num !== undefined) { w.raw(K.protocol_num); w.num(c.protocol_num) }
  if (c.protocol_name !== undefined) { w.raw(K.protocol_name); w.str(c.protocol_name) }
  if (c.protocol_ver_id !== undefined) { w.raw(K.protocol_ver_id); w.num(c.protocol_ver_id) }
  if (c.protocol_ver !== undefined) { w.raw(K.protocol_ver); w.str(c.protocol_ver) }
  if (c.uid !== undefined) { w.raw(K.uid); w.str(c.uid) }
  if (c.tcp_flags !== undefined) { w.raw(K.tcp_flags); w.num(c.tcp_flags) }
  if (connMemo.size < 256) connMemo.set(key, { v: [c.direction, c.protocol_name, c.protocol_ver, c.uid, c.tcp_flags, c.protocol_num], bytes: w.since(start) })
}

function writeHead (w: MsgpackWriter, r: NetworkActivity): void {
  if (memoHit(headMemo, r.class_uid, r.class_name, r.category_uid, r.category_name, 0, 0)) { w.raw(headMemo.bytes); return }
  const start = w.length
  w.raw(K.class_uid); w.num(r.class_uid)
  if (r.class_name !== undefined) { w.raw(K.class_name); w.str(r.class_name) }
  w.raw(K.category_uid); w.num(r.category_uid)
  if (r.category_name !== undefined) { w.raw(K.category_name); w.str(r.category_name) }
  headMemo = { v: [r.class_uid, r.class_name, r.category_uid, r.category_name, 0, 0], bytes: w.since(start) }
}

function writeActivity (w: MsgpackWriter, r: NetworkActivity): void {
  const id = r.activity_id
  const m = id >= 0 && id < 256 ? activityMemo[id] : undefined
  if (memoHit(m, r.activity_name, r.type_uid, r.type_name, r.severity_id, r.severity, id)) { w.raw(m.bytes); return }
  const start = w.length
  w.raw(K.activity_id); w.num(r.activity_id)
  if (r.activity_name !== undefined) { w.raw(K.activity_name); w.str(r.activity_name) }
  w.raw(K.type_uid); w.num(r.type_uid)
  if (r.type_name !== undefined) { w.raw(K.type_name); w.str(r.type_name) }
  w.raw(K.severity_id); w.num(r.severity_id)
  if (r.severity !== undefined) { w.raw(K.severity); w.str(r.severity) }
  if (id >= 0 && id < 256 && Number.isInteger(id)) activityMemo[id] = { v: [r.activity_name, r.type_uid, r.type_name, r.severity_id, r.severity, id], bytes: w.since(start) }
}

let sourceMemo: Memo | undefined

// metadata and device are shared by every record of a batch (and usually
// declared constants): one copy for both
function writeSource (w: MsgpackWriter, r: NetworkActivity): void {
  if (memoHit(sourceMemo, r.metadata, r.device, 0, 0, 0, 0)) { w.raw(sourceMemo.bytes); return }
  const start = w.length
  w.raw(K.metadata); if (!w.constant(r.metadata)) w.value(r.metadata)
  if (r.device !== undefined) { w.raw(K.device); if (!w.constant(r.device)) w.value(r.device) }
  if (w.isConstant(r.metadata) && (r.device === undefined || w.isConstant(r.device))) sourceMemo = { v: [r.metadata, r.device, 0, 0, 0, 0], bytes: w.since(start) }
}

/** Write one record; returns the number of keys written (for the sampling check). */
function writeNet (w: MsgpackWriter, r: NetworkActivity): number {
  // required by the type: class_uid, category_uid, activity_id, type_uid, severity_id, time, metadata
  const n = 7 + d(r.class_name) + d(r.category_name) + d(r.activity_name) + d(r.type_name) + d(r.severity) +
    d(r.start_time) + d(r.duration) + d(r.status_id) + d(r.status) + d(r.status_code) + d(r.status_detail) + d(r.message) +
    d(r.device) + d(r.actor) + d(r.src_endpoint) + d(r.dst_endpoint) + d(r.connection_info) + d(r.is_src_dst_assignment_known) + d(r.unmapped)
  w.mapHeader(n)
  writeHead(w, r)
  writeActivity(w, r)
  w.raw(K.time); w.num(r.time)
  if (r.start_time !== undefined) { w.raw(K.start_time); w.num(r.start_time) }
  if (r.duration !== undefined) { w.raw(K.duration); w.num(r.duration) }
  if (r.status_id !== undefined) { w.raw(K.status_id); w.num(r.status_id) }
  if (r.status !== undefined) { w.raw(K.status); w.str(r.status) }
  if (r.status_code !== undefined) { w.raw(K.status_code); w.str(r.status_code) }
  if (r.status_detail !== undefined) { w.raw(K.status_detail); w.str(r.status_detail) }
  if (r.message !== undefined) { w.raw(K.message); w.str(r.message) }
  writeSource(w, r)
  if (r.actor !== undefined) { w.raw(K.actor); w.value(r.actor) }
  if (r.src_endpoint !== undefined) { w.raw(K.src_endpoint); writeEndpoint(w, r.src_endpoint) }
  if (r.dst_endpoint !== undefined) { w.raw(K.dst_endpoint); writeEndpoint(w, r.dst_endpoint) }
  if (r.connection_info !== undefined) { w.raw(K.connection_info); writeConn(w, r.connection_info) }
  if (r.is_src_dst_assignment_known !== undefined) { w.raw(K.is_src_dst_assignment_known); w.bool(r.is_src_dst_assignment_known) }
  if (r.unmapped !== undefined) { w.raw(K.unmapped); w.value(r.unmapped) }
  return n
}

function sampleOk (r: NetworkActivity, n: number): boolean {
  return countKeys(r) === n &&
    (r.src_endpoint === undefined || countKeys(r.src_endpoint) === d(r.src_endpoint.ip) + d(r.src_endpoint.port) + d(r.src_endpoint.hostname) + d(r.src_endpoint.uid) + d(r.src_endpoint.svc_name)) &&
    (r.dst_endpoint === undefined || countKeys(r.dst_endpoint) === d(r.dst_endpoint.ip) + d(r.dst_endpoint.port) + d(r.dst_endpoint.hostname) + d(r.dst_endpoint.uid) + d(r.dst_endpoint.svc_name))
}

const SAMPLE_EVERY = 64

/**
 * Pack network_activity records [from, to) as one msgpack array. Set
 * w.constants([metadata, device]) first so the shared objects are copied as
 * bytes. Returns the bytes in a fresh, transferable ArrayBuffer, or with
 * `inPlace`, a view of the writer's buffer valid until its next use.
 */
export function packNetBatch (w: MsgpackWriter, records: readonly NetworkActivity[], from = 0, to = records.length, inPlace = false): { bytes: Uint8Array, generic: boolean } {
  w.reset()
  w.arrayHeader(to - from)
  for (let i = from; i < to; i++) {
    const r = records[i]
    const n = writeNet(w, r)
    if ((i & (SAMPLE_EVERY - 1)) === 0 && !sampleOk(r, n)) {
      // a key the type does not know: the generic writer keeps every key
      w.reset()
      w.arrayHeader(to - from)
      for (let j = from; j < to; j++) w.value(records[j])
      return { bytes: inPlace ? w.view() : w.finish(), generic: true }
    }
  }
  return { bytes: inPlace ? w.view() : w.finish(), generic: false }
}
