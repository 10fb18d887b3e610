import { AF_INET, AF_INET6, HEADER, KDIR, KIND, NET_EVENT, RST_REASON_UNKNOWN, TCP, TCP_STATE_NAME } from '../../bpf/abi.js'
import { CLASS, DIRECTION, NET_ACTIVITY, SEVERITY } from '../../shared/ocsf/constants.js'
import { IANA_PROTOCOL } from '../../shared/ocsf/lean.js'
import { emptyProcInfo } from '../proctable/table.js'
import { ipv6At } from './ip.js'
import { encodeStr, type MsgpackWriter } from './pack.js'
import { completeFromTable, PROCESS_PATHS, writeProcess } from './proc-fields.js'
import type { DecodeEnv, Normaliser } from './types.js'

// Raw NET_EVENTS records → lean OCSF network_activity records, following the
// mapping in DESIGN.md:
//   inbound connection established (SYN_RECV → ESTABLISHED)  Open, inbound
//   SYN_SENT                                                  Open, outbound
//   → CLOSE                                                   Close
//   RST sent with no socket (tcp_send_reset NO_SOCKET)        Refuse, inbound, tcp
//   ICMP destination unreachable sent (icmp_send type 3)      Refuse, inbound, udp
//   ICMPv6 destination unreachable sent (packet.bpf.c, type 1) Refuse, inbound, udp
//   → LISTEN                                                  Listen
//
// Each record is written straight from the struct into the msgpack output
// as [shape, v1, v2, ...]; no object is built. Strings that repeat (status
// details, state and reason names) are encoded once and copied.

const COMMON = [
  'class_uid', 'activity_id', 'severity_id', 'time', 'status_detail',
  'connection_info.direction_id', 'connection_info.protocol_num', 'connection_info.protocol_ver_id',
  'is_src_dst_assignment_known', 'src_endpoint.ip', 'src_endpoint.port', 'dst_endpoint.ip', 'dst_endpoint.port',
] as const

// One shape per raw kind; the rarely present values come last, where an
// absent tail costs nothing. protocol_name travels only when the IANA
// number has no keyword the expand function knows (then it is 'unknown').
// One shape per raw kind; the rarely present values come last, where an
// absent tail costs nothing. Variants of a kind's shape:
// - a fold summary (the kernel's record of a flow's repeats within its
//   window) has the OCSF base event's count and time span after the common
//   values; `time` is the last repeat's;
// - OWNED (STATE only): the process table knows the record's process (a
//   connect, a listen): actor.process then carries its image, command line,
//   user and ancestry (proc-fields.ts), as network_activity's actor.process;
// - NAMED (STATE only): the name a DNS answer gave the remote address
//   (dns-names.ts), for outbound opens whose address the cache knows.
const SHAPE = { STATE: 0, RESET: 1, ICMP: 2 } as const
const TAILS = [
  ['duration', 'actor.process.pid', 'actor.process.name', 'actor.process.ptid', 'unmapped.tcp_oldstate', 'unmapped.tcp_newstate', 'connection_info.protocol_name'],
  ['unmapped.rst_reason', 'unmapped.sk_state', 'connection_info.protocol_name'],
  ['unmapped.icmp_type', 'unmapped.icmp_code', 'connection_info.protocol_name'],
]
const FOLD = ['count', 'start_time', 'end_time']
const OWNER = PROCESS_PATHS.slice(2).map(p => 'actor.process.' + p)
const V_FOLD = 1
const V_OWNED = 2
const V_NAMED = 4
// (kind, variant bits); the three plain shapes first, so network keeps shapes 0-2
const VARIANTS: ReadonlyArray<readonly [number, number]> = [
  [SHAPE.STATE, 0], [SHAPE.RESET, 0], [SHAPE.ICMP, 0],
  [SHAPE.STATE, V_FOLD], [SHAPE.RESET, V_FOLD], [SHAPE.ICMP, V_FOLD],
  ...[V_OWNED, V_NAMED, V_OWNED | V_NAMED].flatMap(v => [[SHAPE.STATE, v], [SHAPE.STATE, v | V_FOLD]] as Array<[number, number]>),
]
const SHAPES = VARIANTS.map(([k, v]) => [...COMMON, ...(v & V_FOLD ? FOLD : []), ...TAILS[k], ...(v & V_OWNED ? OWNER : []), ...(v & V_NAMED ? ['dst_endpoint.hostname'] : [])])
/** shape index by kind * 8 + variant bits */
const SHAPE_OF: number[] = []
VARIANTS.forEach(([k, v], i) => { SHAPE_OF[k * 8 + v] = i })
const owner = emptyProcInfo()

/** The table's entry for the record's process into `owner`; false if it has none. */
function ownerOf (env: DecodeEnv, dv: DataView, p: number): boolean {
  const tgid = dv.getUint32(p + HEADER.tgid, true)
  if (env.procs === undefined || tgid === 0) return false
  owner.pid = tgid; owner.uid = -1; owner.flags = 0; owner.path = ''; owner.cmdLine = ''; owner.cwd = ''
  return completeFromTable(env.procs, owner)
}

const ICMP_UNREACH_CODE: Record<number, string> = {
  0: 'net unreachable', 1: 'host unreachable', 2: 'protocol unreachable', 3: 'port unreachable',
  9: 'net administratively prohibited', 10: 'host administratively prohibited', 13: 'communication administratively prohibited',
}

// RFC 4443 3.1
const ICMP6_UNREACH_CODE: Record<number, string> = {
  0: 'no route to destination', 1: 'communication administratively prohibited', 3: 'address unreachable', 4: 'port unreachable',
}

const UNKNOWN_PROTOCOL = encodeStr('unknown')
const CACHE_MAX = 4096

/** Encoded strings by an integer key, made on first use. */
class Encoded {
  readonly #m = new Map<number, Uint8Array>()
  get (key: number, make: (key: number) => string): Uint8Array {
    let b = this.#m.get(key)
    if (b === undefined) {
      if (this.#m.size >= CACHE_MAX) this.#m.clear()
      b = encodeStr(make(key))
      this.#m.set(key, b)
    }
    return b
  }

  clear (): void { this.#m.clear() }
}

const stateName = (s: number): string => TCP_STATE_NAME[s] ?? String(s)
const stateDetails = new Encoded()
const makeStateDetail = (k: number): string => `TCP ${stateName(k >> 8)} -> ${stateName(k & 0xff)}`
const icmpDetails = new Encoded()
/** key: (ICMPv6 ? 0x10000 : 0) | type << 8 | code */
const makeIcmpDetail = (k: number): string => {
  const v6 = k >= 0x10000
  const type = (k >> 8) & 0xff
  const code = k & 0xff
  const name = (v6 ? ICMP6_UNREACH_CODE : ICMP_UNREACH_CODE)[code] ?? 'code ' + code
  return `${v6 ? 'ICMPv6' : 'ICMP'} destination unreachable sent: ${name} (type ${type} code ${code})`
}
// reason names come from the running kernel: the caches hold one env's
const resetDetails = new Encoded()
const reasonNames = new Encoded()
let reasonsOf: Record<number, string> | undefined
const reasonName = (reason: number): string => reason === RST_REASON_UNKNOWN ? 'UNKNOWN' : (reasonsOf?.[reason] ?? String(reason))
const makeResetDetail = (k: number): string => {
  const name = reasonName(Math.floor(k / 2))
  return k % 2 === 1 ? `TCP RST sent: no socket listening (${name})` : `TCP RST sent (${name})`
}

/** A TCP state under `unmapped`: its name, or its number if it has none. */
function writeState (w: MsgpackWriter, s: number): void {
  const name = TCP_STATE_NAME[s]
  if (name === undefined) w.num(s)
  else w.raw(stateNames[s])
}
const stateNames: Uint8Array[] = Array.from({ length: 256 }, (_, s) => encodeStr(stateName(s)))

function writeIp (w: MsgpackWriter, buf: Uint8Array, off: number, v6: boolean): void {
  if (v6) w.str(ipv6At(buf, off))
  else w.ipv4(buf, off)
}

function writePort (w: MsgpackWriter, port: number): void {
  // 0 = not known yet (a connect() before its port is bound): absent
  if (port === 0) w.nil()
  else w.uint(port)
}

function write (w: MsgpackWriter, buf: Uint8Array, dv: DataView, p: number, kind: number, shape0: number, env: DecodeEnv): number {
  const family = dv.getUint16(p + NET_EVENT.family, true)
  if (family !== AF_INET && family !== AF_INET6) return -1
  const v6 = family === AF_INET6
  const kdir = buf[p + NET_EVENT.direction]
  const protocol = buf[p + NET_EVENT.protocol]
  const keepRaw = env.unmapped !== false
  let shape: number = SHAPE.STATE
  let activity: number = NET_ACTIVITY.UNKNOWN
  let direction: number = DIRECTION.UNKNOWN
  let known = true
  let inbound = false
  // only syscall-context transitions (connect, listen) run in the owning
  // process; softirq-context events carry whatever task was interrupted
  let processKnown = false
  // a listening socket has one endpoint: the local one, the would-be responder
  let listener = false
  let durationMs = 0
  let detail: Uint8Array
  let tail: number
  const oldstate = buf[p + NET_EVENT.oldstate]
  switch (kind) {
    case KIND.NET_STATE: {
      const newstate = buf[p + NET_EVENT.newstate]
      if (newstate === TCP.SYN_SENT) {
        activity = NET_ACTIVITY.OPEN; direction = DIRECTION.OUTBOUND; processKnown = true
      } else if (newstate === TCP.ESTABLISHED || newstate === TCP.SYN_RECV) {
        activity = NET_ACTIVITY.OPEN; direction = DIRECTION.INBOUND; inbound = true
      } else if (newstate === TCP.LISTEN) {
        activity = NET_ACTIVITY.LISTEN; listener = true; processKnown = true
      } else if (newstate === TCP.CLOSE) {
        activity = NET_ACTIVITY.CLOSE
        if (kdir === KDIR.INBOUND) { direction = DIRECTION.INBOUND; inbound = true } else if (kdir === KDIR.OUTBOUND) direction = DIRECTION.OUTBOUND
        else if (oldstate === TCP.LISTEN) listener = true
        else known = false
        const durNs = dv.getUint32(p + NET_EVENT.duration_ns + 4, true) * 4294967296 + dv.getUint32(p + NET_EVENT.duration_ns, true)
        if (durNs > 0) durationMs = Math.round(durNs / 1e6)
      } else {
        activity = NET_ACTIVITY.OTHER; known = false
      }
      detail = stateDetails.get(oldstate << 8 | newstate, makeStateDetail)
      // values after the 13 common ones: duration, pid, name, ptid, the two states
      tail = keepRaw ? 6 : processKnown && dv.getUint32(p + HEADER.tgid, true) !== 0 ? 4 : durationMs > 0 ? 1 : 0
      break
    }
    case KIND.NET_RESET: {
      shape = SHAPE.RESET
      if (env.rstReasons !== reasonsOf) { reasonsOf = env.rstReasons; resetDetails.clear(); reasonNames.clear() }
      const reason = dv.getUint32(p + NET_EVENT.reason, true)
      if (kdir === KDIR.INBOUND) {
        // tcp_send_reset with no socket: a probe reached a port nobody listens on
        activity = NET_ACTIVITY.REFUSE; direction = DIRECTION.INBOUND; inbound = true
      } else {
        activity = NET_ACTIVITY.RESET; known = false
      }
      detail = resetDetails.get(reason * 2 + (inbound ? 1 : 0), makeResetDetail)
      tail = keepRaw ? (oldstate === 0 ? 1 : 2) : 0
      break
    }
    default: { // KIND.NET_ICMP, KIND.NET_ICMP6: a port unreachable answered a probe
      shape = SHAPE.ICMP
      activity = NET_ACTIVITY.REFUSE; direction = DIRECTION.INBOUND; inbound = true
      detail = icmpDetails.get((kind === KIND.NET_ICMP6 ? 0x10000 : 0) | buf[p + NET_EVENT.icmp_type] << 8 | buf[p + NET_EVENT.icmp_code], makeIcmpDetail)
      tail = keepRaw ? 2 : 0
    }
  }
  const owned = shape === SHAPE.STATE && processKnown && ownerOf(env, dv, p)
  const protocolName = IANA_PROTOCOL[protocol] === undefined
  const time = wallMs(dv, p + HEADER.boot_ns, env)
  const hostname = activity === NET_ACTIVITY.OPEN && direction === DIRECTION.OUTBOUND && env.names !== undefined
    ? env.names.getAt(buf, p + NET_EVENT.raddr, v6, time)
    : undefined
  const named = hostname !== undefined
  const repeats = dv.getUint32(p + NET_EVENT.count, true)
  const index = SHAPE_OF[shape * 8 + (repeats > 0 ? V_FOLD : 0) + (owned ? V_OWNED : 0) + (named ? V_NAMED : 0)]
  // an extended shape carries its kind's whole tail before its own values
  const extended = owned || named
  const tailLen = TAILS[shape].length
  const fold = repeats > 0 ? FOLD.length : 0
  const values = extended ? SHAPES[index].length : COMMON.length + fold + (protocolName ? tailLen : tail)
  w.arrayHeader(1 + values)
  w.uint(shape0 + index)
  w.uint(CLASS.NETWORK_ACTIVITY.uid)
  w.uint(activity)
  w.uint(SEVERITY.INFORMATIONAL)
  w.f64(time)
  w.raw(detail)
  w.uint(direction)
  w.uint(protocol)
  w.uint(v6 ? 6 : 4)
  w.bool(known)
  const local = p + NET_EVENT.laddr
  const remote = p + NET_EVENT.raddr
  const lport = dv.getUint16(p + NET_EVENT.lport, true)
  const rport = dv.getUint16(p + NET_EVENT.rport, true)
  if (inbound) {
    writeIp(w, buf, remote, v6); writePort(w, rport); writeIp(w, buf, local, v6); writePort(w, lport)
  } else if (listener) {
    w.nil(); w.nil(); writeIp(w, buf, local, v6); writePort(w, lport)
  } else {
    writeIp(w, buf, local, v6); writePort(w, lport); writeIp(w, buf, remote, v6); writePort(w, rport)
  }
  // (start_ns 0: a repeat raced the summary before it for the first time; the span is unknown, so it is the last repeat's)
  if (fold > 0) { w.uint(repeats); w.f64(dv.getBigUint64(p + NET_EVENT.start_ns, true) === 0n ? time : Math.min(time, wallMs(dv, p + NET_EVENT.start_ns, env))); w.f64(time) }
  const tailWritten = extended || protocolName ? tailLen - 1 : tail
  if (tailWritten > 0) {
    if (shape === SHAPE.STATE || extended) writeStateTail(w, buf, dv, p, tailWritten, durationMs, processKnown, keepRaw, oldstate)
    else if (shape === SHAPE.RESET) {
      if (keepRaw) {
        w.raw(reasonNames.get(dv.getUint32(p + NET_EVENT.reason, true), reasonName))
        if (oldstate === 0) { if (tailWritten > 1) w.nil() } else writeState(w, oldstate)
      } else { w.nil(); w.nil() }
    } else if (keepRaw) {
      w.num(buf[p + NET_EVENT.icmp_type]); w.num(buf[p + NET_EVENT.icmp_code])
    } else { w.nil(); w.nil() }
  }
  if (protocolName) w.raw(UNKNOWN_PROTOCOL)
  else if (extended) w.nil()
  if (owned) writeProcess(w, env.procs, owner, '', env.bootToWallNs, 2)
  if (named) w.str(hostname)
  return index
}

/** The CLOCK_BOOTTIME u64 at byte `at` as wall-clock milliseconds. */
function wallMs (dv: DataView, at: number, env: DecodeEnv): number {
  const bootNs = dv.getUint32(at + 4, true) * 4294967296 + dv.getUint32(at, true)
  return Math.floor((bootNs + env.bootToWallNs) / 1e6)
}

/** duration, actor.process.{pid,name,ptid}, unmapped.tcp_{old,new}state: the first `n` of them. */
function writeStateTail (w: MsgpackWriter, buf: Uint8Array, dv: DataView, p: number, n: number, durationMs: number, processKnown: boolean, keepRaw: boolean, oldstate: number): void {
  if (durationMs > 0) w.num(durationMs)
  else w.nil()
  if (n === 1) return
  const tgid = dv.getUint32(p + HEADER.tgid, true)
  if (processKnown && tgid !== 0) {
    w.uint(tgid)
    w.latin1z(buf, p + HEADER.comm, HEADER.COMM_LEN)
    w.uint(dv.getUint32(p + HEADER.pid, true))
  } else { w.nil(); w.nil(); w.nil() }
  if (n === 4) return
  if (keepRaw) { writeState(w, oldstate); writeState(w, buf[p + NET_EVENT.newstate]) } else { w.nil(); w.nil() }
}

export const network: Normaliser = {
  name: 'network',
  classUid: CLASS.NETWORK_ACTIVITY.uid,
  kinds: { [KIND.NET_STATE]: NET_EVENT.SIZEOF, [KIND.NET_RESET]: NET_EVENT.SIZEOF, [KIND.NET_ICMP]: NET_EVENT.SIZEOF, [KIND.NET_ICMP6]: NET_EVENT.SIZEOF },
  shapes: SHAPES,
  write,
}
