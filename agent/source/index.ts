import type { KernelCounters, KernelDecodeInfo, RingSource } from '../../bpf/types.js'
import type { ConsumerStats, SourceSpec } from '../protocol.js'
import { loadBpf, recursionMisses, type NetProbeOptions } from './kernel.js'
import { SYNTH_NO_SOCKET_REASON, SYNTH_RST_REASONS, synthBootToWallNs, SynthSource, type SynthOptions } from './synth.js'

// Where records come from: the kernel's ring buffer, or the seeded generator
// that writes the same bytes. Each side of the consumer thread sees one
// interface: the main thread opens a Capture (it owns the kernel objects and
// knows how the records decode and what the ring counted); the consumer
// thread opens the RingSource its SourceSpec names and drains it without
// knowing which it is.

/** The main thread's side of a source. */
export interface Capture {
  /** what the consumer thread opens with openSource() */
  readonly spec: SourceSpec
  readonly decodeInfo: KernelDecodeInfo
  /** CLOCK_REALTIME - the records' boot clock, in ns (it drifts: read it again now and then) */
  bootToWallNs: () => number
  /** The ring's counters: the kernel's, or those a synthetic source reports through its consumer thread. */
  counters: (consumers: readonly ConsumerStats[]) => KernelCounters | undefined
  /** BPF program runs skipped because the program was already running on the CPU; absent without a kernel */
  recursionMisses?: () => number
  close: () => void
}

/** The consumer thread's side of a source: the ring, and what it adds to ConsumerStats. */
export interface Source {
  ring: RingSource
  stats: () => Pick<ConsumerStats, 'synthCounters' | 'synth'>
}

export async function openCapture (kind: 'kernel' | 'synth', opts: { kernel: NetProbeOptions, synth: SynthOptions }): Promise<Capture> {
  if (kind === 'synth') {
    // the generator's clock does not drift from the wall clock: read it once
    const bootToWall = synthBootToWallNs()
    return {
      spec: { kind: 'synth', synth: opts.synth },
      decodeInfo: { rstReasons: SYNTH_RST_REASONS, noSocketReason: SYNTH_NO_SOCKET_REASON },
      bootToWallNs: () => bootToWall,
      counters: consumers => consumers[0]?.synthCounters,
      close: () => {},
    }
  }
  const bpf = await loadBpf()
  // the agent's own sockets (its gRPC stream) are not telemetry
  const probe = bpf.NetProbe.open({ ignoreTgid: process.pid, ...opts.kernel })
  return {
    spec: { kind: 'ring', fd: probe.ringFd },
    decodeInfo: probe.decodeInfo,
    bootToWallNs: bpf.bootToWallNs,
    counters: () => probe.counters(),
    recursionMisses: () => recursionMisses(probe.progStats()),
    close: () => { probe.close() },
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
