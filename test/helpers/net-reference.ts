import { AF_INET, AF_INET6, HEADER, KDIR, KIND, NET_EVENT, RST_REASON_UNKNOWN, TCP, TCP_STATE_NAME } from '../../bpf/abi.js'
import { DIRECTION, NET_ACTIVITY } from '../../shared/ocsf/constants.js'
import { makeNetworkActivity, type NetFields } from '../../shared/ocsf/network.js'
import type { NetworkActivity, OcsfDevice, OcsfMetadata } from '../../shared/ocsf/types.js'
import { ipv4At, ipv6At } from '../../agent/normalize/ip.js'
import type { DecodeEnv } from '../../agent/normalize/types.js'

// The agent's decoder before the lean wire, kept as the reference the lean
// normaliser (agent/normalize/net.ts) is proved against: raw NET_EVENTS
// records → full OCSF network_activity objects (makeNetworkActivity), following
// the mapping in DESIGN.md:
//   inbound connection established (SYN_RECV → ESTABLISHED)  Open, inbound
//   SYN_SENT                                                  Open, outbound
//   → CLOSE                                                   Close
//   RST sent with no socket (tcp_send_reset NO_SOCKET)        Refuse, inbound, tcp
//   ICMP destination unreachable sent (icmp_send type 3)      Refuse, inbound, udp
//   → LISTEN                                                  Listen

export type DecodeContext = DecodeEnv & { metadata: OcsfMetadata, device: OcsfDevice }

const ICMP_UNREACH_CODE: Record<number, string> = {
  0: 'net unreachable', 1: 'host unreachable', 2: 'protocol unreachable', 3: 'port unreachable',
  9: 'net administratively prohibited', 10: 'host administratively prohibited', 13: 'communication administratively prohibited',
}
const ICMP6_UNREACH_CODE: Record<number, string> = { 0: 'no route to destination', 1: 'communication administratively prohibited', 3: 'address unreachable', 4: 'port unreachable' }

function commAt (buf: Uint8Array, off: number): string {
  let end = off
  const lim = off + HEADER.COMM_LEN
  while (end < lim && buf[end] !== 0) end++
  // comm is attacker-controlled (prctl PR_SET_NAME): decode lossily, never throw
  return Buffer.from(buf.buffer, buf.byteOffset + off, end - off).toString('latin1')
}

/**
 * Decode `length` bytes of well-formed back-to-back NET_EVENTS records
 * starting at `offset` of `buf`, pushing one OCSF record per raw record onto
 * `out` (malformed input is the lean decoder's to handle, and tested there).
 */
export function decodeNetRecords (buf: Uint8Array, offset: number, length: number, ctx: DecodeContext, out: NetworkActivity[]): void {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  for (let p = offset; p + NET_EVENT.SIZEOF <= offset + length; p += NET_EVENT.SIZEOF) {
    const rec = decodeOne(buf, dv, p, dv.getUint16(p + HEADER.kind, true), ctx, ctx.unmapped !== false)
    if (rec !== undefined) out.push(rec)
  }
}

function decodeOne (buf: Uint8Array, dv: DataView, p: number, kind: number, ctx: DecodeContext, keepRaw: boolean): NetworkActivity | undefined {
  const bootNs = dv.getUint32(p + HEADER.boot_ns + 4, true) * 4294967296 + dv.getUint32(p + HEADER.boot_ns, true)
  const timeMs = Math.floor((bootNs + ctx.bootToWallNs) / 1e6)
  const family = dv.getUint16(p + NET_EVENT.family, true)
  const v6 = family === AF_INET6
  const lip = v6 ? ipv6At(buf, p + NET_EVENT.laddr) : ipv4At(buf, p + NET_EVENT.laddr)
  const rip = v6 ? ipv6At(buf, p + NET_EVENT.raddr) : ipv4At(buf, p + NET_EVENT.raddr)
  const lport = dv.getUint16(p + NET_EVENT.lport, true)
  const rport = dv.getUint16(p + NET_EVENT.rport, true)
  const kdir = buf[p + NET_EVENT.direction]
  const protocol = buf[p + NET_EVENT.protocol]
  const tgid = dv.getUint32(p + HEADER.tgid, true)
  const f: NetFields = {
    timeMs,
    activityId: NET_ACTIVITY.UNKNOWN,
    directionId: DIRECTION.UNKNOWN,
    protocolNum: protocol,
    ipVersion: v6 ? 6 : 4,
    srcIp: lip,
    srcPort: lport,
    dstIp: rip,
    dstPort: rport,
    assignmentKnown: true,
  }
  if (family !== AF_INET && family !== AF_INET6) return undefined
  let inbound = false
  // only syscall-context transitions (connect, listen) run in the owning
  // process; softirq-context events carry whatever task was interrupted
  let processKnown = false
  // a listening socket has one endpoint: the local one, the would-be responder
  let listener = false
  switch (kind) {
    case KIND.NET_STATE: {
      const oldstate = buf[p + NET_EVENT.oldstate]
      const newstate = buf[p + NET_EVENT.newstate]
      if (newstate === TCP.SYN_SENT) {
        f.activityId = NET_ACTIVITY.OPEN
        f.directionId = DIRECTION.OUTBOUND
        processKnown = true
      } else if (newstate === TCP.ESTABLISHED || newstate === TCP.SYN_RECV) {
        f.activityId = NET_ACTIVITY.OPEN
        f.directionId = DIRECTION.INBOUND
        inbound = true
      } else if (newstate === TCP.LISTEN) {
        f.activityId = NET_ACTIVITY.LISTEN
        f.directionId = DIRECTION.UNKNOWN
        listener = true
        processKnown = true
      } else if (newstate === TCP.CLOSE) {
        f.activityId = NET_ACTIVITY.CLOSE
        if (kdir === KDIR.INBOUND) { f.directionId = DIRECTION.INBOUND; inbound = true } else if (kdir === KDIR.OUTBOUND) f.directionId = DIRECTION.OUTBOUND
        else if (oldstate === TCP.LISTEN) listener = true
        else f.assignmentKnown = false
        const durNs = dv.getUint32(p + NET_EVENT.duration_ns + 4, true) * 4294967296 + dv.getUint32(p + NET_EVENT.duration_ns, true)
        if (durNs > 0) f.durationMs = Math.round(durNs / 1e6)
      } else {
        f.activityId = NET_ACTIVITY.OTHER
        f.assignmentKnown = false
      }
      f.statusDetail = `TCP ${TCP_STATE_NAME[oldstate] ?? oldstate} -> ${TCP_STATE_NAME[newstate] ?? newstate}`
      if (keepRaw) f.unmapped = { tcp_oldstate: TCP_STATE_NAME[oldstate] ?? oldstate, tcp_newstate: TCP_STATE_NAME[newstate] ?? newstate }
      break
    }
    case KIND.NET_RESET: {
      const reason = dv.getUint32(p + NET_EVENT.reason, true)
      const reasonName = reason === RST_REASON_UNKNOWN ? 'UNKNOWN' : (ctx.rstReasons[reason] ?? String(reason))
      if (kdir === KDIR.INBOUND) {
        // tcp_send_reset with no socket: a probe reached a port nobody listens on
        f.activityId = NET_ACTIVITY.REFUSE
        f.directionId = DIRECTION.INBOUND
        inbound = true
        f.statusDetail = `TCP RST sent: no socket listening (${reasonName})`
      } else {
        f.activityId = NET_ACTIVITY.RESET
        f.assignmentKnown = false
        f.statusDetail = `TCP RST sent (${reasonName})`
      }
      if (keepRaw) {
        const sk = buf[p + NET_EVENT.oldstate]
        f.unmapped = sk === 0 ? { rst_reason: reasonName } : { rst_reason: reasonName, sk_state: TCP_STATE_NAME[sk] ?? sk }
      }
      break
    }
    case KIND.NET_ICMP:
    case KIND.NET_ICMP6: {
      const type = buf[p + NET_EVENT.icmp_type]
      const code = buf[p + NET_EVENT.icmp_code]
      f.activityId = NET_ACTIVITY.REFUSE
      f.directionId = DIRECTION.INBOUND
      inbound = true
      const v6 = kind === KIND.NET_ICMP6
      f.statusDetail = `${v6 ? 'ICMPv6' : 'ICMP'} destination unreachable sent: ${(v6 ? ICMP6_UNREACH_CODE : ICMP_UNREACH_CODE)[code] ?? 'code ' + code} (type ${type} code ${code})`
      if (keepRaw) f.unmapped = { icmp_type: type, icmp_code: code }
      break
    }
  }
  if (inbound) {
    f.srcIp = rip; f.srcPort = rport; f.dstIp = lip; f.dstPort = lport
  } else if (listener) {
    f.srcIp = undefined; f.srcPort = 0; f.dstIp = lip; f.dstPort = lport
  }
  if (processKnown && tgid !== 0) {
    f.pid = tgid
    f.tid = dv.getUint32(p + HEADER.pid, true)
    f.comm = commAt(buf, p + HEADER.comm)
  }
  return makeNetworkActivity(f, ctx.metadata, ctx.device)
}
