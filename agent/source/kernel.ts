import { NET_EVENT } from '../../bpf/abi.js'
import { DNS_EVENT } from '../../bpf/abi-dns.js'
import { FILE_EVENT } from '../../bpf/abi-file.js'
import { EXEC_EVENT } from '../../bpf/abi-proc.js'
import type { ProbeOptions } from '../../bpf/object.js'
import type { PacketProbe } from '../../bpf/packet.js'
import type { KernelCounters, KernelDecodeInfo, ProgramCounters, ProgStats } from '../../bpf/types.js'
import { PicketError } from '../../shared/errors.js'
import { siblingModule } from '../../shared/paths.js'

// The agent loads bpf/index.ts only when it captures from the kernel (a
// dynamic import), so the synthetic source and its tests never load the
// native addon.

import type { NetProbeOptions } from '../../bpf/index.js'
export type { NetProbeOptions }

export type BpfModule = typeof import('../../bpf/index.js')

export async function loadBpf (): Promise<BpfModule> {
  return await import(siblingModule(import.meta.url, '../../bpf/index').href) as BpfModule
}

/** Sum of reservation failures over the programs. */
export function reserveFailures (c: KernelCounters): number {
  return c.state.reserveFailed + c.reset.reserveFailed + c.icmp.reserveFailed
}

export function recursionMisses (stats: readonly ProgStats[]): number {
  let n = 0
  for (const s of stats) n += s.recursionMisses
  return n
}

/** One class's probe, as the agent drives it: its ring, its drops, its counters. */
export interface ClassProbe {
  readonly className: string
  /** the ring's name in the agent (slab descriptors, decode tasks, metrics) */
  readonly ring: string
  readonly ringFd: number
  readonly maxRecordBytes: number
  readonly decodeInfo?: KernelDecodeInfo
  /** the network class's counters (AgentStats.kernel); the other classes have their own shapes */
  counters: () => KernelCounters | undefined
  /** records lost because the ring was full, cumulative */
  drops: () => number
  /** records the programs matched (emitted or lost), cumulative */
  events: () => number
  progStats: () => ProgStats[]
  /** emit what the kernel still holds back (the network class's fold summaries), before a last drain */
  flush?: () => void
  /** the part of the class this kernel cannot capture, and the fix: said once when the class opens */
  readonly degraded?: string
  close: () => void
}

type Opener = (bpf: BpfModule, opts: NetProbeOptions) => ClassProbe

// Each class with probes: how the agent opens it. A class gets a ring when
// it is enabled and agent/normalize/registry.ts has its normaliser; the dns
// entry waits for agent/normalize/dns.ts. The network and file probes leave
// out the agent's own process (its gRPC stream, its spool writes: a loop).
const CLASS_PROBES: Record<string, Opener> = {
  network: (bpf, opts) => {
    const p = bpf.NetProbe.open({ ignoreTgid: process.pid, ...opts })
    // ICMPv6 port-unreachable answers (UDP probes of closed ports over IPv6)
    // have no tracepoint: the packet probe's cgroup_skb egress program sees
    // them and writes them into the same ring, as network records. Without
    // cgroup v2 the class still captures everything else.
    let icmp6: PacketProbe | undefined
    let degraded: string | undefined
    try {
      icmp6 = bpf.PacketProbe.open({ dns: false, icmp6: true, netRingFd: p.ringFd, netRingBytes: p.ringBytes, netWakeupBytes: p.config.wakeupBytes })
    } catch (err) {
      degraded = `ICMPv6 port-unreachable answers are not captured, so IPv6 UDP scans go unseen: ${(err as Error).message}`
    }
    const six = (): ProgramCounters => icmp6?.counters().icmp6 ?? { matched: 0, reserveFailed: 0 }
    return {
      className: 'network',
      ring: 'net',
      ringFd: p.ringFd,
      maxRecordBytes: NET_EVENT.SIZEOF,
      decodeInfo: p.decodeInfo,
      ...(degraded !== undefined ? { degraded } : {}),
      counters: () => p.counters(),
      drops: () => reserveFailures(p.counters()) + six().reserveFailed,
      events: () => { const c = p.counters(); return c.state.matched + c.reset.matched + c.icmp.matched + six().matched },
      progStats: () => [...p.progStats(), ...(icmp6?.progStats() ?? [])],
      flush: () => { p.flush() },
      close: () => { icmp6?.close(); p.close() },
    }
  },
  process: (bpf, opts) => {
    // not the agent's own process left out here: its forks are few and make
    // no records of their own, and a child it (or a host process embedding
    // it) starts must still find its parent in the table
    const p = bpf.ProcProbe.open(ringOpts(opts))
    return { className: 'process', ring: 'proc', ringFd: p.ringFd, maxRecordBytes: EXEC_EVENT.SIZEOF, counters: () => undefined, drops: () => bpf.procDrops(p.counters()), events: () => { const c = p.counters(); return c.exec.matched + c.fork.matched + c.exit.matched }, progStats: () => p.progStats(), close: () => { p.close() } }
  },
  file: (bpf, opts) => {
    const p = bpf.FileProbe.open({ ...ringOpts(opts), ignoreTgid: process.pid })
    return { className: 'file', ring: 'file', ringFd: p.ringFd, maxRecordBytes: FILE_EVENT.SIZEOF, counters: () => undefined, drops: () => p.counters().file.reserveFailed, events: () => p.counters().file.matched, progStats: () => p.progStats(), close: () => { p.close() } }
  },
  dns: (bpf, opts) => {
    const p = bpf.PacketProbe.open({ icmp6: false, ...(opts.ringBytes !== undefined ? { dnsRingBytes: opts.ringBytes } : {}) })
    return { className: 'dns', ring: 'dns', ringFd: p.ringFd, maxRecordBytes: DNS_EVENT.SIZEOF, counters: () => undefined, drops: () => p.counters().dns.reserveFailed, events: () => p.counters().dns.matched, progStats: () => p.progStats(), close: () => { p.close() } }
  },
}

/** The ring size and tracefs the operator gave, for every class's probe. */
function ringOpts (o: NetProbeOptions): ProbeOptions {
  const out: ProbeOptions = {}
  if (o.ringBytes !== undefined) out.ringBytes = o.ringBytes
  if (o.wakeupBytes !== undefined) out.wakeupBytes = o.wakeupBytes
  if (o.tracefsDir !== undefined) out.tracefsDir = o.tracefsDir
  return out
}

/** The classes this build can capture from the kernel. */
export const PROBED_CLASSES: readonly string[] = Object.keys(CLASS_PROBES)

export function openClassProbe (bpf: BpfModule, className: string, opts: NetProbeOptions): ClassProbe {
  const open = CLASS_PROBES[className]
  if (open === undefined) throw new PicketError('PICKET_ERR_CONFIG', `no probes for the ${className} class`)
  return open(bpf, opts)
}
