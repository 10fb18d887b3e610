import type { KernelCounters, KernelDecodeInfo, ProgStats, RingSource } from '../bpf/types.js'
import { siblingModule } from '../shared/paths.js'

// The agent loads bpf/index.ts only when it captures from the kernel, so the
// synthetic source, the tests and `picket start --source synth` never need
// the native addon. These are the parts of its API the agent uses.

export interface NetProbeOptions {
  ringBytes?: number
  wakeupBytes?: number
  tracefsDir?: string
  programs?: { state?: boolean, reset?: boolean, icmp?: boolean }
}

export interface NetProbeLike {
  readonly ringFd: number
  readonly decodeInfo: KernelDecodeInfo
  counters: () => KernelCounters
  progStats: () => ProgStats[]
  close: () => void
}

export interface BpfModule {
  NetProbe: { open: (opts?: NetProbeOptions) => NetProbeLike }
  openRing: (fd: number) => RingSource
  bootToWallNs: () => number
}

export async function loadBpf (): Promise<BpfModule> {
  return await import(siblingModule(import.meta.url, '../bpf/index').href) as BpfModule
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
