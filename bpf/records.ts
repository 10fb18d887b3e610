import { AF_INET, HEADER, NET_EVENT } from './abi.js'

// The raw-record codec: the common header of any record, and one NET_EVENTS
// record (bpf/events.h struct picket_net_event) to and from its bytes, field
// for field. readNetRecord is the inverse of encodeNetRecord; the synthetic
// source (agent/source/synth.ts) and the tests write records with it exactly
// as the BPF programs do.

/** One NET_EVENTS record, field for field (bpf/events.h struct picket_net_event). */
export interface RawNetRecord {
  kind: number
  cpu: number
  /** CLOCK_BOOTTIME nanoseconds */
  bootNs: bigint
  /** kernel pid (thread id) */
  pid: number
  /** kernel tgid (process id) */
  tgid: number
  comm: string
  family: number
  /** local address: dotted IPv4 or IPv6 text */
  laddr: string
  raddr: string
  lport: number
  rport: number
  protocol: number
  direction: number
  oldstate: number
  newstate: number
  icmpType: number
  icmpCode: number
  reason: number
  sock: bigint
  durationNs: bigint
  /** a fold summary: how many repeats it stands for (absent or 0: a record of its own) */
  count?: number
  /** a fold summary: boot time of its first repeat */
  startNs?: bigint
}

function writeIp (buf: Uint8Array, off: number, family: number, text: string): void {
  buf.fill(0, off, off + 16)
  if (family === AF_INET) {
    const parts = text.split('.')
    if (parts.length !== 4) throw new TypeError(`'${text}' is not an IPv4 address`)
    for (let i = 0; i < 4; i++) {
      const n = Number(parts[i])
      if (!Number.isInteger(n) || n < 0 || n > 255) throw new TypeError(`'${text}' is not an IPv4 address`)
      buf[off + i] = n
    }
    return
  }
  parseIpv6(text, buf, off)
}

function parseIpv6 (text: string, buf: Uint8Array, off: number): void {
  let s = text
  let tail: number[] = []
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s)
  if (v4 !== null) {
    const b = v4[1].split('.').map(Number)
    tail = [(b[0] << 8) | b[1], (b[2] << 8) | b[3]]
    s = s.slice(0, -v4[1].length)
    if (s.endsWith(':') && !s.endsWith('::')) s = s.slice(0, -1)
  }
  const halves = s.split('::')
  if (halves.length > 2) throw new TypeError(`'${text}' is not an IPv6 address`)
  const groups = (h: string): number[] => h === '' ? [] : h.split(':').map(g => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) throw new TypeError(`'${text}' is not an IPv6 address`)
    return parseInt(g, 16)
  })
  const head = groups(halves[0])
  const back = halves.length === 2 ? [...groups(halves[1]), ...tail] : []
  const front = halves.length === 2 ? head : [...head, ...tail]
  const zeros = 8 - front.length - back.length
  if (zeros < 0 || (halves.length === 1 && zeros !== 0)) throw new TypeError(`'${text}' is not an IPv6 address`)
  const all = [...front, ...new Array<number>(zeros).fill(0), ...back]
  for (let i = 0; i < 8; i++) {
    buf[off + 2 * i] = all[i] >> 8
    buf[off + 2 * i + 1] = all[i] & 0xff
  }
}

function readIp (buf: Uint8Array, off: number, family: number): string {
  if (family === AF_INET) return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`
  const g: string[] = []
  for (let i = 0; i < 8; i++) g.push(((buf[off + 2 * i] << 8) | buf[off + 2 * i + 1]).toString(16))
  return g.join(':')
}

/** Write one record at `off` of `buf` (NET_EVENT.SIZEOF bytes); returns the offset after it. */
export function encodeNetRecord (rec: RawNetRecord, buf: Uint8Array, off: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  buf.fill(0, off, off + NET_EVENT.SIZEOF)
  dv.setUint16(off + HEADER.kind, rec.kind, true)
  dv.setUint16(off + HEADER.size, NET_EVENT.SIZEOF, true)
  dv.setUint32(off + HEADER.cpu, rec.cpu, true)
  dv.setBigUint64(off + HEADER.boot_ns, rec.bootNs, true)
  dv.setUint32(off + HEADER.pid, rec.pid, true)
  dv.setUint32(off + HEADER.tgid, rec.tgid, true)
  const comm = Buffer.from(rec.comm, 'latin1')
  buf.set(comm.subarray(0, HEADER.COMM_LEN - 1), off + HEADER.comm)
  writeIp(buf, off + NET_EVENT.laddr, rec.family, rec.laddr)
  writeIp(buf, off + NET_EVENT.raddr, rec.family, rec.raddr)
  dv.setUint16(off + NET_EVENT.lport, rec.lport, true)
  dv.setUint16(off + NET_EVENT.rport, rec.rport, true)
  dv.setUint16(off + NET_EVENT.family, rec.family, true)
  buf[off + NET_EVENT.protocol] = rec.protocol
  buf[off + NET_EVENT.direction] = rec.direction
  buf[off + NET_EVENT.oldstate] = rec.oldstate
  buf[off + NET_EVENT.newstate] = rec.newstate
  buf[off + NET_EVENT.icmp_type] = rec.icmpType
  buf[off + NET_EVENT.icmp_code] = rec.icmpCode
  dv.setUint32(off + NET_EVENT.reason, rec.reason >>> 0, true)
  dv.setBigUint64(off + NET_EVENT.sock, rec.sock, true)
  dv.setBigUint64(off + NET_EVENT.duration_ns, rec.durationNs, true)
  dv.setUint32(off + NET_EVENT.count, rec.count ?? 0, true)
  dv.setBigUint64(off + NET_EVENT.start_ns, rec.startNs ?? 0n, true)
  return off + NET_EVENT.SIZEOF
}

/** The common header every record starts with (bpf/events.h struct picket_event_header), field for field. */
export interface RawHeader {
  kind: number
  /** record size in bytes: the next record starts this far on */
  size: number
  cpu: number
  /** CLOCK_BOOTTIME nanoseconds */
  bootNs: bigint
  /** kernel pid (thread id) */
  pid: number
  /** kernel tgid (process id) */
  tgid: number
  comm: string
}

/** The header of the record at `off` of `buf`. */
export function readHeader (buf: Uint8Array, off: number, dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)): RawHeader {
  let end = off + HEADER.comm
  while (end < off + HEADER.comm + HEADER.COMM_LEN && buf[end] !== 0) end++
  return {
    kind: dv.getUint16(off + HEADER.kind, true),
    size: dv.getUint16(off + HEADER.size, true),
    cpu: dv.getUint32(off + HEADER.cpu, true),
    bootNs: dv.getBigUint64(off + HEADER.boot_ns, true),
    pid: dv.getUint32(off + HEADER.pid, true),
    tgid: dv.getUint32(off + HEADER.tgid, true),
    // comm is whatever a process named itself (prctl PR_SET_NAME): byte for byte, never thrown on
    comm: Buffer.from(buf.buffer, buf.byteOffset + off + HEADER.comm, end - off - HEADER.comm).toString('latin1'),
  }
}

/** Offsets of the back-to-back records in buf[offset, offset + length). */
export function * recordOffsets (buf: Uint8Array, offset: number, length: number): Generator<number> {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const end = offset + length
  for (let p = offset; p + HEADER.SIZEOF <= end;) {
    const size = dv.getUint16(p + HEADER.size, true)
    if (size < HEADER.SIZEOF || p + size > end) throw new Error(`record at ${p} has size ${size}: the slab is corrupt`)
    yield p
    p += size
  }
}

/** Read one record back (the inverse of encodeNetRecord; IPv6 comes back uncompressed). */
export function readNetRecord (buf: Uint8Array, off: number): RawNetRecord {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const family = dv.getUint16(off + NET_EVENT.family, true)
  const { kind, cpu, bootNs, pid, tgid, comm } = readHeader(buf, off, dv)
  return {
    kind,
    cpu,
    bootNs,
    pid,
    tgid,
    comm,
    family,
    laddr: readIp(buf, off + NET_EVENT.laddr, family),
    raddr: readIp(buf, off + NET_EVENT.raddr, family),
    lport: dv.getUint16(off + NET_EVENT.lport, true),
    rport: dv.getUint16(off + NET_EVENT.rport, true),
    protocol: buf[off + NET_EVENT.protocol],
    direction: buf[off + NET_EVENT.direction],
    oldstate: buf[off + NET_EVENT.oldstate],
    newstate: buf[off + NET_EVENT.newstate],
    icmpType: buf[off + NET_EVENT.icmp_type],
    icmpCode: buf[off + NET_EVENT.icmp_code],
    reason: dv.getUint32(off + NET_EVENT.reason, true),
    sock: dv.getBigUint64(off + NET_EVENT.sock, true),
    durationNs: dv.getBigUint64(off + NET_EVENT.duration_ns, true),
  }
}
