import type { KernelCounters, ProgStats } from '../../bpf/types.js'
import { siblingModule } from '../../shared/paths.js'

// The agent loads bpf/index.ts only when it captures from the kernel (a
// dynamic import), so the synthetic source and its tests never load the
// native addon.

export type { NetProbeOptions } from '../../bpf/index.js'

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
