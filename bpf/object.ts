import { release } from 'node:os'
import { PicketError } from '../shared/errors.js'
import { loadAddon, type NativeBpf, type ObjHandle } from './addon.js'
import { wrapNative } from './native-errors.js'
import type { ProgramCounters, ProgStats } from './types.js'

// The one loader every probe (NetProbe, PacketProbe, ProcProbe, FileProbe)
// uses for its BPF object, in libbpf-bootstrap's fixed order: open,
// configure (ring sizes, shared maps, .rodata), load, fill maps, attach;
// one cleanup path whatever step fails, and errors that name the step and
// the object.

/** Options every tracepoint probe takes. */
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
export interface TracepointAttach extends TracepointRef { prog: string }
export interface CgroupAttach {
  prog: string
  /** the cgroup v2 directory */
  cgroup: string
  /** the attach point, as `attached` lists it: 'cgroup_skb/egress' */
  point: string
}
export type AttachSpec = TracepointAttach | CgroupAttach

export interface ObjectSpec {
  path: string
  /** ring buffer maps this object creates, and their sizes in bytes */
  rings: Readonly<Record<string, number>>
  /** maps taken over from another loaded object, by map fd (a ring two objects write) */
  reuse?: Readonly<Record<string, number>>
  /** .rodata variables and their bytes */
  rodata: Readonly<Record<string, Uint8Array>>
  /** programs to attach, in this order */
  attach: readonly AttachSpec[]
  /** after load, before the first attach: fill the maps the programs consult */
  prepare?: (obj: BpfObject) => void
  /** capabilities besides root the object needs, for the error that says so (default CAP_BPF, CAP_PERFMON) */
  caps?: readonly string[]
  /** what a load or attach error adds after the object's path, e.g. where it attaches */
  context?: string
}

function attachOne (native: NativeBpf, handle: ObjHandle, a: AttachSpec): string {
  if ('cgroup' in a) {
    native.attachCgroup(handle, a.prog, a.cgroup)
    return a.point
  }
  try {
    native.attachTracepoint(handle, a.prog, a.category, a.name)
  } catch (err) {
    if ((err as { errno?: number }).errno === 2 /* ENOENT */) {
      throw new PicketError('PICKET_ERR_TRACEPOINT_MISSING', `cannot attach ${a.prog}: tracepoint ${a.category}:${a.name} does not exist on kernel ${release()}`, { tracepoint: `${a.category}:${a.name}`, kernel: release() })
    }
    throw err
  }
  return `${a.category}:${a.name}`
}

/** A loaded, attached BPF object. */
export class BpfObject {
  readonly #native: NativeBpf
  #handle: ObjHandle | undefined
  readonly path: string
  readonly #caps: readonly string[] | undefined
  /** each attach point: `category:name` for a tracepoint, e.g. `cgroup_skb/egress` for a cgroup hook */
  readonly attached: readonly string[]
  /** map fd of each ring, created or reused, by map name */
  readonly ringFds: Readonly<Record<string, number>>
  /** size of each ring this object created */
  readonly ringBytes: Readonly<Record<string, number>>

  private constructor (native: NativeBpf, handle: ObjHandle, spec: ObjectSpec, attached: string[], ringFds: Record<string, number>) {
    this.#native = native
    this.#handle = handle
    this.path = spec.path
    this.#caps = spec.caps
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
      throw wrapNative(err, `open ${spec.path}`, spec.caps)
    }
    const attached: string[] = []
    const ringFds: Record<string, number> = {}
    const obj = new BpfObject(native, handle, spec, attached, ringFds)
    try {
      for (const [map, bytes] of Object.entries(spec.rings)) native.setMaxEntries(handle, map, bytes)
      for (const [map, fd] of Object.entries(spec.reuse ?? {})) native.reuseMap(handle, map, fd)
      for (const [name, bytes] of Object.entries(spec.rodata)) native.setGlobal(handle, '.rodata', name, bytes)
      native.load(handle)
      for (const map of [...Object.keys(spec.rings), ...Object.keys(spec.reuse ?? {})]) ringFds[map] = native.mapFd(handle, map)
      spec.prepare?.(obj)
      for (const a of spec.attach) attached.push(attachOne(native, handle, a))
      return obj
    } catch (err) {
      obj.close()
      if (err instanceof PicketError) throw err
      throw wrapNative(err, `load ${spec.path}${spec.context !== undefined ? ` (${spec.context})` : ''}`, spec.caps)
    }
  }

  #h (): ObjHandle {
    if (this.#handle === undefined) throw new PicketError('PICKET_ERR_BPF_MAP', `the BPF object ${this.path} is closed`)
    return this.#handle
  }

  /** The first n slots of a per-CPU u64 array, each summed over the CPUs. */
  readCounters (map: string, n: number): number[] {
    return this.#native.readPercpuArray(this.#h(), map, n)
  }

  mapUpdate (map: string, key: Uint8Array, value: Uint8Array): void {
    try {
      this.#native.mapUpdate(this.#h(), map, key, value)
    } catch (err) {
      throw wrapNative(err, `update ${map} in ${this.path}`, this.#caps)
    }
  }

  mapDelete (map: string, key: Uint8Array): void {
    try {
      this.#native.mapDelete(this.#h(), map, key)
    } catch (err) {
      throw wrapNative(err, `delete from ${map} in ${this.path}`, this.#caps)
    }
  }

  /** Run a loaded, unattached program once from user space (a syscall program); its return value. */
  run (prog: string): number {
    try {
      return this.#native.progRun(this.#h(), prog)
    } catch (err) {
      throw wrapNative(err, `run ${prog} in ${this.path}`, this.#caps)
    }
  }

  progStats (): ProgStats[] {
    return this.#native.progStats(this.#h()).map(({ name, runCount, runTimeNs, recursionMisses }) => ({ name, runCount, runTimeNs, recursionMisses }))
  }

  /** Detach every program and free the object. */
  close (): void {
    if (this.#handle === undefined) return
    this.#native.close(this.#handle)
    this.#handle = undefined
  }
}

/** Where a probe's counters sit in its `counters` array: [matched, reserveFailed] per program, a slot per other count. */
export type CounterSlots = Readonly<Record<string, number | readonly [matched: number, reserveFailed: number]>>
export type NamedCounters<S extends CounterSlots> = { -readonly [K in keyof S]: S[K] extends number ? number : ProgramCounters }

function nameCounters<S extends CounterSlots> (c: readonly number[], slots: S): NamedCounters<S> {
  const out: Record<string, number | ProgramCounters> = {}
  for (const [name, at] of Object.entries(slots)) out[name] = typeof at === 'number' ? c[at] : { matched: c[at[0]], reserveFailed: c[at[1]] }
  return out as NamedCounters<S>
}

/** What the probes share: one object, the ring of its class, the same lifecycle. */
export class Probe {
  protected readonly obj: BpfObject
  /** the class's ring buffer map fd, for openRing() in the thread that drains it */
  readonly ringFd: number
  readonly ringBytes: number
  /** each attach point (BpfObject.attached) */
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

  /** The object's `counters` array (`max` slots, each summed over the CPUs), named by `slots`. */
  protected namedCounters<S extends CounterSlots> (max: number, slots: S): NamedCounters<S> {
    return nameCounters(this.obj.readCounters('counters', max), slots)
  }

  /** Detach every program and free the object (the links also go when the process dies). */
  close (): void {
    this.obj.close()
  }
}
