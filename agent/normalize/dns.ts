import { decode, type Answer, type Packet } from 'dns-packet'
import { HEADER, KIND } from '../../bpf/abi.js'
import { DNS_EVENT } from '../../bpf/abi-dns.js'
import { CLASS, DIRECTION, SEVERITY } from '../../shared/ocsf/constants.js'
import { ipv4At, ipv6At } from './ip.js'
import type { MsgpackWriter } from './pack.js'
import type { DecodeEnv, Normaliser } from './types.js'

// Raw DNS_EVENTS records (bpf/events-dns.h) → lean OCSF dns_activity (4003):
// a message with QR = 0 is a Query (1), with QR = 1 a Response (2). The
// payload is parsed by dns-packet; anything it refuses (truncated, a
// compression pointer that does not point back, a name over 255 bytes, a
// count the bytes do not hold) is counted and skipped. An answer the kernel
// cut at its snap length is kept with the answers that fit.
//
// src_endpoint is the asking side, dst_endpoint the server, for both
// messages of an exchange. The process is the socket's owner, from the
// connect/sendmsg hooks (attributed = 1); absent otherwise.
//
// Response time: the kernel joins a response to its query by (socket
// cookie, remote address, ports, transaction id) and hands the query's time
// in the response record (query_ns). The join cannot be made here: decode
// workers have no affinity, so the two records of one exchange are often
// decoded by different threads.

const COMMON = [
  'class_uid', 'activity_id', 'severity_id', 'time',
  'connection_info.direction_id', 'connection_info.protocol_num', 'connection_info.protocol_ver_id',
  'src_endpoint.ip', 'src_endpoint.port', 'dst_endpoint.ip', 'dst_endpoint.port',
  'query.hostname', 'query.type', 'query.class', 'query.packet_uid', 'query.opcode_id',
] as const
const PROCESS = ['actor.process.pid', 'actor.process.name', 'actor.process.ptid', 'actor.user.uid'] as const
const SHAPE = { QUERY: 0, RESPONSE: 1 } as const
const SHAPES = [
  [...COMMON, ...PROCESS, 'unmapped.socket_cookie'],
  [...COMMON, 'rcode_id', 'answers', 'query_time', 'response_time', 'duration', ...PROCESS, 'unmapped.socket_cookie', 'unmapped.dns_len'],
]

const ACTIVITY = { QUERY: 1, RESPONSE: 2 } as const

/** What the DNS decoder saw, per worker; the runtime sums the workers' deltas (takeDnsStats). */
export interface DnsDecodeStats {
  /** messages written as dns_activity records */
  decoded: number
  /** skipped: the payload is not a DNS message dns-packet can read, or has no question */
  malformed: number
  /** records whose framing (captured vs size) is impossible */
  badRecord: number
  /** written, but the kernel's snap length cut the answers: only those that fit are listed */
  cut: number
  /** responses the kernel joined to their query (they carry query_time and duration) */
  joined: number
  /** responses whose query it had not seen (sent before capture began, or evicted) */
  unjoined: number
}

const stats: DnsDecodeStats = { decoded: 0, malformed: 0, badRecord: 0, cut: 0, joined: 0, unjoined: 0 }

/** The counts since the last call (the worker ships them with its result), and zero them. */
export function takeDnsStats (): DnsDecodeStats {
  const out = { ...stats }
  for (const k of Object.keys(stats) as Array<keyof DnsDecodeStats>) stats[k] = 0
  return out
}

/** rcode 0-11 and 16-23 are themselves in OCSF; 12-15 are unassigned (24). */
function rcodeId (rcode: number): number {
  if (rcode <= 11 || (rcode >= 16 && rcode <= 23)) return rcode
  if (rcode <= 15 || (rcode >= 24 && rcode <= 3840) || (rcode >= 4096 && rcode <= 65534)) return 24
  return 25
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** An answer's data as text, by its type (RFC 1035 presentation order). */
export function rdataText (a: Answer): string {
  const d = (a as { data?: unknown }).data
  if (typeof d === 'string') return d
  if (Buffer.isBuffer(d)) return a.type === 'TXT' ? d.toString('utf8') : hex(d)
  if (Array.isArray(d)) return d.map(x => Buffer.isBuffer(x) ? x.toString('utf8') : String(x)).join(' ')
  if (d !== null && typeof d === 'object') {
    const o = d as Record<string, unknown>
    if (a.type === 'MX') return `${String(o.preference)} ${String(o.exchange)}`
    if (a.type === 'SRV') return `${String(o.priority ?? 0)} ${String(o.weight ?? 0)} ${String(o.port)} ${String(o.target)}`
    if (a.type === 'SOA') return `${String(o.mname)} ${String(o.rname)} ${String(o.serial)} ${String(o.refresh)} ${String(o.retry)} ${String(o.expire)} ${String(o.minimum)}`
    return JSON.stringify(o, (_k, v: unknown) => (v !== null && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') ? hex(Buffer.from((v as { data: number[] }).data)) : v)
  }
  return ''
}

/**
 * The message, or undefined if dns-packet refuses it. A message the kernel
 * cut (captured < dns_len) is read again with fewer records claimed, down
 * to its question alone: what was copied whole is kept.
 */
export function parseMessage (payload: Buffer, cut: boolean): { msg: Packet, answersCut: boolean } | undefined {
  const whole = readWithin(payload)
  if (whole !== undefined) return { msg: whole, answersCut: false }
  if (!cut || payload.length < 12) return undefined
  const copy = Buffer.from(payload)
  copy.writeUInt16BE(0, 8) // authorities
  copy.writeUInt16BE(0, 10) // additionals
  for (let an = Math.min(payload.readUInt16BE(6), 64); an >= 0; an--) {
    copy.writeUInt16BE(an, 6)
    const msg = readWithin(copy)
    if (msg !== undefined) return { msg, answersCut: true }
  }
  return undefined
}

/**
 * dns-packet reads some record data (TXT strings, rdata) with Buffer
 * slicing that stops silently at the end: a message it read past its last
 * byte is refused here, so a cut record is never listed half.
 */
function readWithin (b: Buffer): Packet | undefined {
  try {
    const msg = decode(b)
    return decode.bytes <= b.length ? msg : undefined
  } catch {
    return undefined
  }
}

function writeIp (w: MsgpackWriter, buf: Uint8Array, off: number, v6: boolean): void {
  w.str(v6 ? ipv6At(buf, off) : ipv4At(buf, off))
}

function write (w: MsgpackWriter, buf: Uint8Array, dv: DataView, p: number, _kind: number, shape0: number, env: DecodeEnv): number {
  const size = dv.getUint16(p + HEADER.size, true)
  const captured = dv.getUint16(p + DNS_EVENT.captured, true)
  const dnsLen = dv.getUint16(p + DNS_EVENT.dns_len, true)
  const family = dv.getUint16(p + DNS_EVENT.family, true)
  if (DNS_EVENT.payload + captured > size || captured > dnsLen || (family !== 2 && family !== 10)) { stats.badRecord++; return -1 }
  const payload = Buffer.from(buf.buffer, buf.byteOffset + p + DNS_EVENT.payload, captured)
  const parsed = parseMessage(payload, captured < dnsLen)
  const q = parsed?.msg.questions?.[0]
  if (parsed === undefined || q === undefined || typeof q.name !== 'string') { stats.malformed++; return -1 }
  const { msg } = parsed
  const response = msg.type === 'response'
  const v6 = family === 10
  const lport = dv.getUint16(p + DNS_EVENT.lport, true)
  const rport = dv.getUint16(p + DNS_EVENT.rport, true)
  // the server's side (dns_server_side): port 53 is ours, the client is remote
  const serverSide = lport === 53 && rport !== 53
  const bootNs = dv.getUint32(p + HEADER.boot_ns + 4, true) * 4294967296 + dv.getUint32(p + HEADER.boot_ns, true)
  const time = Math.floor((bootNs + env.bootToWallNs) / 1e6)
  const cookie = dv.getBigUint64(p + DNS_EVENT.cookie, true)
  const id = msg.id ?? 0
  const keepRaw = env.unmapped !== false
  const attributed = buf[p + DNS_EVENT.attributed] === 1 && dv.getUint32(p + HEADER.tgid, true) !== 0

  const shape = response ? SHAPE.RESPONSE : SHAPE.QUERY
  w.arrayHeader(1 + SHAPES[shape].length)
  w.uint(shape0 + shape)
  w.uint(CLASS.DNS_ACTIVITY.uid)
  w.uint(response ? ACTIVITY.RESPONSE : ACTIVITY.QUERY)
  w.uint(SEVERITY.INFORMATIONAL)
  w.f64(time)
  w.uint(serverSide ? DIRECTION.INBOUND : DIRECTION.OUTBOUND)
  w.uint(buf[p + DNS_EVENT.protocol])
  w.uint(v6 ? 6 : 4)
  const local = p + DNS_EVENT.laddr
  const remote = p + DNS_EVENT.raddr
  if (serverSide) {
    writeIp(w, buf, remote, v6); w.uint(rport); writeIp(w, buf, local, v6); w.uint(lport)
  } else {
    writeIp(w, buf, local, v6); w.uint(lport); writeIp(w, buf, remote, v6); w.uint(rport)
  }
  w.str(q.name)
  w.str(q.type)
  w.str(q.class ?? 'IN')
  w.uint(id)
  const opcode = ((msg.flags ?? 0) >> 11) & 0x0f
  w.uint(opcode <= 6 ? opcode : 99)

  if (response) {
    w.uint(rcodeId((msg.flags ?? 0) & 0x0f))
    const answers = (msg.answers ?? []).filter(a => a.type !== 'OPT')
    w.arrayHeader(answers.length)
    for (const a of answers) {
      const ttl = (a as { ttl?: number }).ttl
      const cls = (a as { class?: string }).class
      w.mapHeader(ttl === undefined ? 3 : 4)
      w.key('type'); w.str(a.type)
      w.key('class'); w.str(cls ?? 'IN')
      w.key('rdata'); w.str(rdataText(a))
      if (ttl !== undefined) { w.key('ttl'); w.uint(ttl) }
      if (env.names !== undefined && !serverSide && (a.type === 'A' || a.type === 'AAAA') && typeof a.data === 'string') env.names.put(a.data, q.name, ttl ?? 0, time)
    }
    const queryNs = dv.getUint32(p + DNS_EVENT.query_ns + 4, true) * 4294967296 + dv.getUint32(p + DNS_EVENT.query_ns, true)
    if (queryNs !== 0) {
      const queryTime = Math.floor((queryNs + env.bootToWallNs) / 1e6)
      stats.joined++
      w.f64(queryTime); w.f64(time); w.num(Math.max(0, time - queryTime))
    } else {
      stats.unjoined++
      w.nil(); w.f64(time); w.nil()
    }
    if (parsed.answersCut) stats.cut++
  }
  if (attributed) {
    w.uint(dv.getUint32(p + HEADER.tgid, true))
    w.latin1z(buf, p + HEADER.comm, HEADER.COMM_LEN)
    w.uint(dv.getUint32(p + HEADER.pid, true))
    w.str(String(dv.getUint32(p + DNS_EVENT.uid, true)))
  } else { w.nil(); w.nil(); w.nil(); w.nil() }
  if (keepRaw) w.str(cookie.toString())
  else w.nil()
  if (response) {
    if (keepRaw) w.uint(dnsLen)
    else w.nil()
  }
  stats.decoded++
  return shape
}

export const dns: Normaliser = {
  name: 'dns',
  classUid: CLASS.DNS_ACTIVITY.uid,
  // variable length: the header and addresses, then up to DNS_SNAP bytes of payload
  kinds: { [KIND.DNS]: [DNS_EVENT.payload, DNS_EVENT.SIZEOF] },
  shapes: SHAPES,
  write,
}
