import { NET_EVENT } from '../../bpf/abi.js'
import type { KernelCounters, KernelDecodeInfo, RingSource } from '../../bpf/types.js'
import type { ConsumerStats, SourceSpec } from '../protocol.js'
import { loadBpf, openClassProbe, recursionMisses, type NetProbeOptions, type ClassProbe } from './kernel.js'
import { SYNTH_NO_SOCKET_REASON, SYNTH_RST_REASONS, synthBootToWallNs, SynthSource, type SynthOptions } from './synth.js'

// Where records come from: the kernel's ring buffer, or the seeded generator
// that writes the same bytes. Each side of the consumer thread sees one
// interface: the main thread opens a Capture (it owns the kernel objects and
// knows how the records decode and what the ring counted); the consumer
// thread opens the RingSource its SourceSpec names and drains it without
// knowing which it is.

/** One ring of a capture, drained by a consumer thread of its own. */
export interface CaptureRing {
  /** the ring's name in slab descriptors and decode tasks: 'net', 'proc', 'file' */
  name: string
  /** the OCSF class it carries (agent/normalize/registry.ts) */
  className: string
  /** what the consumer thread opens with openSource() */
  spec: SourceSpec
  maxRecordBytes: number
  /** its consumer applies every record to the process table before handing the slab on */
  writesProcTable: boolean
  /** records this ring lost in the kernel (the ring was full), cumulative */
  drops: () => number
  /** records its programs matched (emitted or lost), cumulative; absent for the synthetic source */
  events?: () => number
  /** the part of its class this kernel cannot capture, and the fix (kernel.ts ClassProbe.degraded) */
  degraded?: string
}

/** The main thread's side of a source. */
export interface Capture {
  /** one per class captured; the network ring first */
  readonly rings: readonly CaptureRing[]
  readonly decodeInfo: KernelDecodeInfo
  /** CLOCK_REALTIME - the records' boot clock, in ns (it drifts: read it again now and then) */
  bootToWallNs: () => number
  /** The ring's counters: the kernel's, or those a synthetic source reports through its consumer thread. */
  counters: (consumers: readonly ConsumerStats[]) => KernelCounters | undefined
  /** BPF program runs skipped because the program was already running on the CPU; absent without a kernel */
  recursionMisses?: () => number
  /** emit what the kernel still holds back (fold summaries) so the last drain takes it; absent for the synthetic source */
  flush?: () => void
  close: () => void
}

/** The consumer thread's side of a source: the ring, and what it adds to ConsumerStats. */
export interface Source {
  ring: RingSource
  stats: () => Pick<ConsumerStats, 'synthCounters' | 'synth'>
}

/**
 * Open the capture of `classes` (the synthetic source has the network class
 * only). Each class is one probe and one ring (kernel.ts CLASS_PROBES).
 * With `optional`, a class whose probe fails to open is reported to it and
 * left out, unless no class at all could be opened.
 */
export async function openCapture (kind: 'kernel' | 'synth', opts: { kernel: NetProbeOptions, synth: SynthOptions }, classes: readonly string[] = ['network'], optional?: (className: string, err: Error) => void): Promise<Capture> {
  if (kind === 'synth') {
    // the generator's clock does not drift from the wall clock: read it once
    const bootToWall = synthBootToWallNs()
    let synthDrops = 0
    return {
      rings: [{
        name: 'net', className: 'network', spec: { kind: 'synth', synth: opts.synth }, maxRecordBytes: NET_EVENT.SIZEOF, writesProcTable: false, drops: () => synthDrops,
      }],
      decodeInfo: { rstReasons: SYNTH_RST_REASONS, noSocketReason: SYNTH_NO_SOCKET_REASON },
      bootToWallNs: () => bootToWall,
      counters: consumers => {
        const c = consumers[0]?.synthCounters
        if (c !== undefined) synthDrops = c.state.reserveFailed + c.reset.reserveFailed + c.icmp.reserveFailed
        return c
      },
      close: () => {},
    }
  }
  const bpf = await loadBpf()
  const probes: ClassProbe[] = []
  try {
    for (const name of classes) {
      try {
        probes.push(openClassProbe(bpf, name, opts.kernel))
      } catch (err) {
        // classes the operator did not name (--class all) are captured where the kernel allows
        if (optional === undefined || (probes.length === 0 && name === classes[classes.length - 1])) throw err
        optional(name, err as Error)
      }
    }
  } catch (err) {
    for (const p of probes) p.close()
    throw err
  }
  const net = probes.find(p => p.className === 'network')
  return {
    rings: probes.map(p => ({ name: p.ring, className: p.className, spec: { kind: 'ring', fd: p.ringFd }, maxRecordBytes: p.maxRecordBytes, writesProcTable: p.className === 'process', drops: p.drops, events: p.events, ...(p.degraded !== undefined ? { degraded: p.degraded } : {}) })),
    decodeInfo: net?.decodeInfo ?? { rstReasons: {}, noSocketReason: -1 },
    bootToWallNs: bpf.bootToWallNs,
    counters: () => net?.counters(),
    recursionMisses: () => probes.reduce((n, p) => n + recursionMisses(p.progStats()), 0),
    flush: () => { for (const p of probes) p.flush?.() },
    close: () => { for (const p of probes) p.close() },
  }
}

/** Open the source `spec` names; call it in the thread that drains. */
export async function openSource (spec: SourceSpec): Promise<Source> {
  if (spec.kind === 'synth') {
    const synth = new SynthSource(spec.synth)
    return { ring: synth, stats: () => ({ synthCounters: synth.counters(), synth: { ...synth.stats(), exhausted: synth.exhausted } }) }
  }
  const bpf = await loadBpf()
  return { ring: bpf.openRing(spec.fd), stats: () => ({}) }
}
