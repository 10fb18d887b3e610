import { release } from 'node:os'
import { PicketError } from '../shared/errors.js'
import { rootPath } from '../shared/paths.js'
import { encodeStruct } from './abi.js'
import { PKT_CONFIG, PKT_CONFIG_SIZEOF, PKT_COUNTER } from './abi-dns.js'
import { findCgroup2 } from './cgroup.js'
import { ringBytesOption, wakeupBytesOption } from './native-errors.js'
import { BpfObject, Probe } from './object.js'
import type { ProgramCounters } from './types.js'

// The packet capture (bpf/packet.bpf.c): DNS messages into DNS_EVENTS and
// ICMPv6 destination-unreachable answers into NET_EVENTS, from cgroup_skb
// programs on the cgroup v2 root, with cgroup sock_addr hooks that tell which
// process owns each DNS socket.

export const PACKET_OBJECT_PATH = rootPath('bpf', 'build', 'packet.bpf.o')

/** cgroup_skb and cgroup sock_addr programs need CAP_NET_ADMIN to attach. */
const CAPS = ['CAP_BPF', 'CAP_NET_ADMIN'] as const

export interface PacketProbeOptions {
  /** capture DNS over UDP and TCP port 53 (default true) */
  dns?: boolean
  /** capture ICMPv6 destination unreachable leaving this host (default true) */
  icmp6?: boolean
  /** also report queries arriving at and answers leaving port 53 of this host (default false: its own lookups only) */
  dnsServerSide?: boolean
  /** DNS_EVENTS ring size in bytes: a power of two, at least one page (default 8 MiB) */
  dnsRingBytes?: number
  /** force a consumer wakeup once this many bytes wait in DNS_EVENTS (default a quarter of it) */
  dnsWakeupBytes?: number
  /**
   * The map fd of a NetProbe's NET_EVENTS: ICMPv6 records then arrive in the
   * same ring as the other network records. Default: a ring of this probe's own.
   */
  netRingFd?: number
  /** size of this probe's own NET_EVENTS when netRingFd is not given (default 1 MiB) */
  netRingBytes?: number
  /** force a wakeup once this many bytes wait in NET_EVENTS (default a quarter of netRingBytes) */
  netWakeupBytes?: number
  /** the cgroup v2 directory to attach to (default: the mounted root, mounting it when root) */
  cgroupDir?: string
  /** BPF object (default bpf/build/packet.bpf.o) */
  objectPath?: string
}

export interface PacketCounters {
  dns: ProgramCounters & { /** emitted with no process: no connect/sendmsg to port 53 seen on the socket */ unattributed: number }
  icmp6: ProgramCounters
}

interface ProgSpec { prog: string, attach: string, dns: boolean, icmp6: boolean }

/** Each program, its cgroup attach point, and which capture needs it. */
export const PACKET_PROGRAMS: readonly ProgSpec[] = [
  { prog: 'picket_skb_egress', attach: 'cgroup_skb/egress', dns: true, icmp6: true },
  { prog: 'picket_skb_ingress', attach: 'cgroup_skb/ingress', dns: true, icmp6: false },
  { prog: 'picket_connect4', attach: 'cgroup/connect4', dns: true, icmp6: false },
  { prog: 'picket_connect6', attach: 'cgroup/connect6', dns: true, icmp6: false },
  { prog: 'picket_sendmsg4', attach: 'cgroup/sendmsg4', dns: true, icmp6: false },
  { prog: 'picket_sendmsg6', attach: 'cgroup/sendmsg6', dns: true, icmp6: false },
]

const DEFAULT_DNS_RING = 8 << 20
const DEFAULT_NET_RING = 1 << 20

export interface PktConfig {
  dnsWakeupBytes: number
  netWakeupBytes: number
  enableDns: boolean
  enableIcmp6: boolean
  dnsServerSide: boolean
}

/** Serialise to the bytes of struct picket_pkt_config. */
export function encodePktConfig (c: PktConfig): Uint8Array {
  return encodeStruct(PKT_CONFIG, PKT_CONFIG_SIZEOF, {
    dns_wakeup_bytes: c.dnsWakeupBytes, net_wakeup_bytes: c.netWakeupBytes,
    enable_dns: Number(c.enableDns), enable_icmp6: Number(c.enableIcmp6), dns_server_side: Number(c.dnsServerSide),
  })
}

/**
 * The packet capture object: its class ring (ringFd) is DNS_EVENTS; its
 * ICMPv6 records go to NET_EVENTS (netRingFd). Lifecycle as every probe:
 * open (configure, load, attach), drain with openRing, close.
 */
export class PacketProbe extends Probe {
  /** NET_EVENTS: this probe's fd of the ring passed as netRingFd, or of its own */
  readonly netRingFd: number
  readonly cgroupDir: string
  readonly config: Readonly<PktConfig>

  private constructor (obj: BpfObject, cgroupDir: string, config: PktConfig) {
    super(obj, 'DNS_EVENTS')
    this.netRingFd = obj.ringFds.NET_EVENTS
    this.cgroupDir = cgroupDir
    this.config = config
  }

  static open (opts: PacketProbeOptions = {}): PacketProbe {
    const dnsRingBytes = ringBytesOption('dnsRingBytes', opts.dnsRingBytes, DEFAULT_DNS_RING)
    const netRingBytes = ringBytesOption('netRingBytes', opts.netRingBytes, DEFAULT_NET_RING)
    if (opts.netRingFd !== undefined && (!Number.isInteger(opts.netRingFd) || opts.netRingFd < 0)) {
      throw new PicketError('PICKET_ERR_CONFIG', `netRingFd must be a file descriptor, got ${opts.netRingFd}`)
    }
    const config: PktConfig = {
      dnsWakeupBytes: wakeupBytesOption('dnsWakeupBytes', opts.dnsWakeupBytes, dnsRingBytes),
      netWakeupBytes: wakeupBytesOption('netWakeupBytes', opts.netWakeupBytes, netRingBytes),
      enableDns: opts.dns ?? true,
      enableIcmp6: opts.icmp6 ?? true,
      dnsServerSide: opts.dnsServerSide ?? false,
    }
    if (!config.enableDns && !config.enableIcmp6) throw new PicketError('PICKET_ERR_CONFIG', 'PacketProbe: enable dns, icmp6 or both')
    const cgroupDir = findCgroup2({ dir: opts.cgroupDir })
    const obj = BpfObject.open({
      path: opts.objectPath ?? PACKET_OBJECT_PATH,
      // a capture that is off keeps a one-page ring: the map must exist
      rings: {
        DNS_EVENTS: config.enableDns ? dnsRingBytes : 4096,
        ...(opts.netRingFd === undefined ? { NET_EVENTS: config.enableIcmp6 ? netRingBytes : 4096 } : {}),
      },
      reuse: opts.netRingFd !== undefined ? { NET_EVENTS: opts.netRingFd } : {},
      rodata: { cfg: encodePktConfig(config) },
      attach: PACKET_PROGRAMS
        .filter(p => (p.dns && config.enableDns) || (p.icmp6 && config.enableIcmp6))
        .map(p => ({ prog: p.prog, cgroup: cgroupDir, point: p.attach })),
      caps: CAPS,
      context: `cgroup ${cgroupDir}, kernel ${release()}`,
    })
    return new PacketProbe(obj, cgroupDir, config)
  }

  counters (): PacketCounters {
    const C = PKT_COUNTER
    const n = this.namedCounters(C.MAX, {
      dns: [C.DNS_MATCHED, C.DNS_RESERVE_FAIL], unattributed: C.DNS_UNATTRIBUTED, icmp6: [C.ICMP6_MATCHED, C.ICMP6_RESERVE_FAIL],
    })
    return { dns: { ...n.dns, unattributed: n.unattributed }, icmp6: n.icmp6 }
  }
}
