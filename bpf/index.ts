import { PicketError } from '../shared/errors.js'
import { loadAddon, type NativeBpf, type RingHandle } from './addon.js'
import { wrapNative } from './native-errors.js'
import type { DrainResult, RingSource } from './types.js'

// The kernel side's public entry: the probes (one per BPF object, all on
// the one loader in object.ts), and the ring reader that drains any of their
// rings. Which class arrives in which ring: CLASSES in abi.ts.

export type { DrainResult, KernelCounters, KernelDecodeInfo, ProgramCounters, ProgStats, RingSource } from './types.js'
export type { ProbeOptions, TracepointRef } from './object.js'
export { kernelDrops, kernelSubmitted, NET_OBJECT_PATH, NET_PROGRAMS, NetProbe, type NetProbeOptions } from './net.js'
export { PROC_OBJECT_PATH, PROC_TRACEPOINTS, ProcProbe, procDrops, type ProcConfig, type ProcCounters, type ProcProbeOptions } from './proc.js'
export { DEFAULT_PATH_RULES, FILE_OBJECT_PATH, FileProbe, type FileConfig, type FileCounters, type FileProbeOptions, type PathRule } from './file.js'
export { PACKET_OBJECT_PATH, PACKET_PROGRAMS, PacketProbe, type PacketCounters, type PacketProbeOptions } from './packet.js'
export { CLASSES, type EventClass } from './abi.js'
export * from './decode-proc.js'
export { readHeader, recordOffsets, type RawHeader } from './records.js'

class Ring implements RingSource {
  readonly #native: NativeBpf
  #ring: RingHandle | undefined
  readonly #out = new Float64Array(2)
  readonly #views = new WeakMap<SharedArrayBuffer, Uint8Array>()

  constructor (native: NativeBpf, fd: number) {
    this.#native = native
    try {
      this.#ring = native.ringOpen(fd)
    } catch (err) {
      throw wrapNative(err, `open ring fd ${fd}`)
    }
  }

  drain (target: SharedArrayBuffer, offset: number, length: number, timeoutMs: number): DrainResult {
    if (this.#ring === undefined) throw new PicketError('PICKET_ERR_BPF_MAP', 'the ring reader is closed')
    let view = this.#views.get(target)
    if (view === undefined) {
      view = new Uint8Array(target)
      this.#views.set(target, view)
    }
    this.#native.ringDrain(this.#ring, view, offset, length, Math.max(0, Math.floor(timeoutMs)), this.#out)
    return { bytes: this.#out[0], records: this.#out[1] }
  }

  pending (): number {
    return this.#ring === undefined ? 0 : this.#native.ringPending(this.#ring)
  }

  close (): void {
    if (this.#ring === undefined) return
    this.#native.ringClose(this.#ring)
    this.#ring = undefined
  }
}

/** A reader of the ring behind `fd`; call it in the thread that drains. */
export function openRing (fd: number): RingSource {
  return new Ring(loadAddon(), fd)
}

export function bootToWallNs (): number {
  return loadAddon().bootToWallNs()
}

export function bootNs (): number {
  return loadAddon().bootNs()
}
