import { release } from 'node:os'
import { PicketError } from '../shared/errors.js'
import { loadAddon, type NativeBpf, type ObjHandle } from './addon.js'
import type { ProgramCounters, ProgStats } from './types.js'

// What every probe (NetProbe, ProcProbe, FileProbe) does alike with its BPF
// object: open, configure (ring sizes, .rodata), load, fill maps, attach,
// and one cleanup path; errno turned into PICKET_ERR_… that say what to do.

/** Options every probe takes. */
export interface ProbeOptions {
  /** the probe's ring size in bytes: a power of two, at least one page */
  ringBytes?: number
  /** force a consumer wakeup once this many bytes wait in the ring (default ringBytes / 4) */
  wakeupBytes?: number
  /** tracefs mount point (default: find it, mounting it when root) */
  tracefsDir?: string
  /** the BPF object (default: the probe's own under bpf/build) */
  objectPath?: string
  /** leave out this process's own events */
  ignoreTgid?: number
}

export interface TracepointRef { category: string, name: string }
export interface AttachSpec extends TracepointRef { prog: string }

export interface ObjectSpec {
  path: string
  /** ring buffer maps and their sizes in bytes */
  rings: Readonly<Record<string, number>>
  /** .rodata variables and their bytes */
  rodata: Readonly<Record<string, Uint8Array>>
  /** programs to attach, in this order */
  attach: readonly AttachSpec[]
  /** after load, before the first attach: fill the maps the programs consult */
  prepare?: (obj: BpfObject) => void
}

export function ringOptions (o: ProbeOptions, defaultRing: number): { ringBytes: number, wakeupBytes: number } {
  const ringBytes = o.ringBytes ?? defaultRing
  if (!Number.isInteger(ringBytes) || ringBytes < 4096 || (ringBytes & (ringBytes - 1)) !== 0) {
    throw new PicketError('PICKET_ERR_CONFIG', `ringBytes must be a power of two of at least 4096, got ${ringBytes}`)
  }
  const wakeupBytes = o.wakeupBytes ?? Math.floor(ringBytes / 4)
  if (!Number.isInteger(wakeupBytes) || wakeupBytes < 0) {
    throw new PicketError('PICKET_ERR_CONFIG', `wakeupBytes must be a non-negative integer, got ${wakeupBytes}`)
  }
  return { ringBytes, wakeupBytes }
}

export function wrapNative (err: unknown, what: string): PicketError {
  const e = err as Error & { errno?: number, step?: string }
  const errno = e.errno ?? 0
  // the verifier answers EACCES (or EINVAL) for a program it refuses; only
  // EPERM, or EACCES outside load, means we lack privileges
  if (errno === 1 /* EPERM */ || (errno === 13 /* EACCES */ && e.step !== 'load')) {
    return new PicketError('PICKET_ERR_BPF_PRIVILEGE',
      `${what}: permission denied — capture needs root, or the capabilities CAP_BPF and CAP_PERFMON (rerun with sudo, or grant them: setcap cap_bpf,cap_perfmon+ep $(readlink -f $(which node)))`,
      { step: e.step, errno })
  }
  switch (e.step) {
    case 'open': return new PicketError('PICKET_ERR_BPF_OPEN', `${e.message}; rebuild with npm run build`, { errno })
    case 'load': return new PicketError('PICKET_ERR_BPF_LOAD', e.message, { errno })
    case 'attach': return new PicketError('PICKET_ERR_BPF_ATTACH', `${e.message} (kernel ${release()})`, { errno })
    default: return new PicketError('PICKET_ERR_BPF_MAP', `${what}: ${e.message}`, { errno })
  }
}

/** A loaded, attached BPF object. */
export class BpfObject {
  readonly #native: NativeBpf
  #handle: ObjHandle | undefined
  readonly path: string
  /** `category:name` of each tracepoint attached */
  readonly attached: readonly string[]
  /** map fd of each ring, by map name */
  readonly ringFds: Readonly<Record<string, number>>
  readonly ringBytes: Readonly<Record<string, number>>

  private constructor (native: NativeBpf, handle: ObjHandle, spec: ObjectSpec, attached: string[], ringFds: Record<string, number>) {
    this.#native = native
    this.#handle = handle
    this.path = spec.path
    this.attached = attached
    this.ringFds = ringFds
    this.ringBytes = spec.rings
  }

  static open (spec: ObjectSpec): BpfObject {
    const native = loadAddon()
    let handle: ObjHandle
    try {
      handle = native.open(spec.path)
    } catch (err) {
      throw wrapNative(err, `open ${spec.path}`)
    }
    const attached: string[] = []
    const ringFds: Record<string, number> = {}
    const obj = new BpfObject(native, handle, spec, attached, ringFds)
    try {
      for (const [map, bytes] of Object.entries(spec.rings)) native.setMaxEntries(handle, map, bytes)
      for (const [name, bytes] of Object.entries(spec.rodata)) native.setGlobal(handle, '.rodata', name, bytes)
      native.load(handle)
      for (const map of Object.keys(spec.rings)) ringFds[map] = native.mapFd(handle, map)
      spec.prepare?.(obj)
      for (const { prog, category, name } of spec.attach) {
        try {
          native.attachTracepoint(handle, prog, category, name)
        } catch (err) {
          if ((err as { errno?: number }).errno === 2 /* ENOENT */) {
            throw new PicketError('PICKET_ERR_TRACEPOINT_MISSING', `cannot attach ${prog}: tracepoint ${category}:${name} does not exist on kernel ${release()}`, { tracepoint: `${category}:${name}`, kernel: release() })
          }
          throw err
        }
        attached.push(`${category}:${name}`)
      }
      return obj
    } catch (err) {
      obj.close()
      if (err instanceof PicketError) throw err
      throw wrapNative(err, `load ${spec.path}`)
    }
  }

  #h (): ObjHandle {
    if (this.#handle === undefined) throw new PicketError('PICKET_ERR_BPF_MAP', `the BPF object ${this.path} is closed`)
    return this.#handle
  }

  mapFd (map: string): number {
    return this.#native.mapFd(this.#h(), map)
  }

  /** The first n slots of a per-CPU u64 array, each summed over the CPUs. */
  readCounters (map: string, n: number): number[] {
    return this.#native.readPercpuArray(this.#h(), map, n)
  }

  mapUpdate (map: string, key: Uint8Array, value: Uint8Array): void {
    try {
      this.#native.mapUpdate(this.#h(), map, key, value)
    } catch (err) {
      throw wrapNative(err, `update ${map} in ${this.path}`)
    }
  }

  mapDelete (map: string, key: Uint8Array): void {
    try {
      this.#native.mapDelete(this.#h(), map, key)
    } catch (err) {
      throw wrapNative(err, `delete from ${map} in ${this.path}`)
    }
  }

  progStats (): ProgStats[] {
    return this.#native.progStats(this.#h()).map(({ name, runCount, runTimeNs, recursionMisses }) => ({ name, runCount, runTimeNs, recursionMisses }))
  }

  close (): void {
    if (this.#handle === undefined) return
    this.#native.close(this.#handle)
    this.#handle = undefined
  }
}

/** One program's pair of counters out of a probe's counter array. */
export function programCounters (c: readonly number[], matched: number, reserveFailed: number): ProgramCounters {
  return { matched: c[matched], reserveFailed: c[reserveFailed] }
}

/** What the probes share: one object, one ring, the same lifecycle. */
export class Probe {
  protected readonly obj: BpfObject
  /** the ring buffer's map fd, for openRing() in the thread that drains it */
  readonly ringFd: number
  readonly ringBytes: number
  /** `category:name` of each tracepoint attached */
  readonly attached: readonly string[]

  protected constructor (obj: BpfObject, ring: string) {
    this.obj = obj
    this.ringFd = obj.ringFds[ring]
    this.ringBytes = obj.ringBytes[ring]
    this.attached = obj.attached
  }

  progStats (): ProgStats[] {
    return this.obj.progStats()
  }

  close (): void {
    this.obj.close()
  }
}
