import { release } from 'node:os'
import { PicketError } from '../shared/errors.js'
import { rootPath } from '../shared/paths.js'
import { COUNTER } from './abi.js'
import { loadAddon, type NativeBpf, type ObjHandle, type RingHandle } from './addon.js'
import { disabledLayout, encodeNetConfig, icmpLayout, resetLayout, stateLayout, type NetConfig } from './layout.js'
import { LoadedObject } from './loaded.js'
import { ringBytesOption, wakeupBytesOption, wrapNative } from './native-errors.js'
import { findTracefs, parseSymbolic, readFormat, type TpFormat } from './tracefs.js'
import type { DrainResult, KernelCounters, KernelDecodeInfo, RingSource } from './types.js'

export type { DrainResult, KernelCounters, KernelDecodeInfo, ProgStats, RingSource } from './types.js'

export const NET_OBJECT_PATH = rootPath('bpf', 'build', 'net.bpf.o')

export interface NetProbeOptions {
  /** NET_EVENTS ring size in bytes: a power of two, at least one page (default 8 MiB) */
  ringBytes?: number
  /** force a consumer wakeup once this many bytes wait in the ring (default ringBytes / 4) */
  wakeupBytes?: number
  /** tracefs mount point (default: find it, mounting it when root) */
  tracefsDir?: string
  /** which programs to attach (default all) */
  programs?: { state?: boolean, reset?: boolean, icmp?: boolean }
  /** BPF object (default bpf/build/net.bpf.o) */
  objectPath?: string
  /** don't report this process's own sockets */
  ignoreTgid?: number
  /**
   * Attach a program to a differently named tracepoint (kernels rename them:
   * before 4.16 the state tracepoint was tcp:tcp_set_state). Its format must
   * still carry the fields the program reads.
   */
  tracepoints?: Partial<Record<'state' | 'reset' | 'icmp', { category: string, name: string }>>
}

interface ProgSpec { key: 'state' | 'reset' | 'icmp', prog: string, category: string, name: string }

export const NET_PROGRAMS: readonly ProgSpec[] = [
  { key: 'state', prog: 'picket_state', category: 'sock', name: 'inet_sock_set_state' },
  { key: 'reset', prog: 'picket_reset', category: 'tcp', name: 'tcp_send_reset' },
  { key: 'icmp', prog: 'picket_icmp', category: 'icmp', name: 'icmp_send' },
]

const DEFAULT_RING = 8 << 20

function validate (o: NetProbeOptions): Required<Pick<NetProbeOptions, 'ringBytes' | 'wakeupBytes'>> {
  const ringBytes = ringBytesOption('ringBytes', o.ringBytes, DEFAULT_RING)
  return { ringBytes, wakeupBytes: wakeupBytesOption('wakeupBytes', o.wakeupBytes, ringBytes) }
}

/**
 * The network capture object: three tracepoint programs feeding NET_EVENTS.
 * Lifecycle as libbpf-bootstrap: open, configure, load, attach; close() detaches.
 */
export class NetProbe extends LoadedObject {
  readonly ringFd: number
  readonly ringBytes: number
  readonly decodeInfo: KernelDecodeInfo
  readonly attached: readonly string[]
  readonly config: Readonly<NetConfig>

  private constructor (native: NativeBpf, handle: ObjHandle, ringFd: number, ringBytes: number, decodeInfo: KernelDecodeInfo, attached: string[], config: NetConfig) {
    super(native, handle, 'NetProbe')
    this.ringFd = ringFd
    this.ringBytes = ringBytes
    this.decodeInfo = decodeInfo
    this.attached = attached
    this.config = config
  }

  /** Discover layouts and build the configuration without touching the kernel's BPF side. */
  static configure (opts: NetProbeOptions = {}): { config: NetConfig, decodeInfo: KernelDecodeInfo, ringBytes: number } {
    const { ringBytes, wakeupBytes } = validate(opts)
    const tracefs = findTracefs(opts.tracefsDir)
    const want = { state: opts.programs?.state ?? true, reset: opts.programs?.reset ?? true, icmp: opts.programs?.icmp ?? true }
    const config: NetConfig = {
      state: disabledLayout(), reset: disabledLayout(), icmp: disabledLayout(),
      wakeupBytes, ignoreTgid: opts.ignoreTgid ?? 0,
      enableState: want.state, enableReset: want.reset, enableIcmp: want.icmp,
    }
    let decodeInfo: KernelDecodeInfo = { rstReasons: {}, noSocketReason: 1 }
    const tp = (key: ProgSpec['key']): { category: string, name: string } => opts.tracepoints?.[key] ?? NET_PROGRAMS.find(p => p.key === key)!
    const fmtOf = (key: ProgSpec['key']): TpFormat => { const { category, name } = tp(key); return readFormat(tracefs, category, name) }
    if (want.state) config.state = stateLayout(fmtOf('state'))
    if (want.reset) {
      const fmt = fmtOf('reset')
      config.reset = resetLayout(fmt)
      const rstReasons = parseSymbolic(fmt.printFmt, 'reason')
      const noSocket = Object.entries(rstReasons).find(([, n]) => n === 'NO_SOCKET')
      decodeInfo = { rstReasons, noSocketReason: noSocket !== undefined ? Number(noSocket[0]) : 1 }
      if (noSocket !== undefined && Number(noSocket[0]) !== 1) {
        // net.bpf.c compares against PICKET_RST_REASON_NO_SOCKET (1)
        throw new PicketError('PICKET_ERR_TRACEPOINT_LAYOUT', `tcp:tcp_send_reset on kernel ${release()} numbers NO_SOCKET as ${noSocket[0]}, not 1; this kernel is not supported yet`)
      }
    }
    if (want.icmp) config.icmp = icmpLayout(fmtOf('icmp'))
    return { config, decodeInfo, ringBytes }
  }

  static open (opts: NetProbeOptions = {}): NetProbe {
    const { config, decodeInfo, ringBytes } = NetProbe.configure(opts)
    const native = loadAddon()
    const path = opts.objectPath ?? NET_OBJECT_PATH
    let handle: ObjHandle
    try {
      handle = native.open(path)
    } catch (err) {
      throw wrapNative(err, `open ${path}`)
    }
    const attached: string[] = []
    try {
      native.setMaxEntries(handle, 'NET_EVENTS', ringBytes)
      native.setGlobal(handle, '.rodata', 'cfg', encodeNetConfig(config))
      native.load(handle)
      for (const p of NET_PROGRAMS) {
        const enabled = p.key === 'state' ? config.enableState : p.key === 'reset' ? config.enableReset : config.enableIcmp
        if (!enabled) continue
        const { category, name } = opts.tracepoints?.[p.key] ?? p
        try {
          native.attachTracepoint(handle, p.prog, category, name)
        } catch (err) {
          const e = err as Error & { errno?: number }
          if (e.errno === 2 /* ENOENT */) {
            throw new PicketError('PICKET_ERR_TRACEPOINT_MISSING', `cannot attach ${p.prog}: tracepoint ${category}:${name} does not exist on kernel ${release()}`, { tracepoint: `${category}:${name}`, kernel: release() })
          }
          throw err
        }
        attached.push(`${category}:${name}`)
      }
      const ringFd = native.mapFd(handle, 'NET_EVENTS')
      return new NetProbe(native, handle, ringFd, ringBytes, decodeInfo, attached, config)
    } catch (err) {
      native.close(handle)
      if (err instanceof PicketError) throw err
      throw wrapNative(err, `load ${path}`)
    }
  }

  counters (): KernelCounters {
    const c = this.native.readPercpuArray(this.handle(), 'counters', COUNTER.MAX)
    return {
      state: { matched: c[COUNTER.STATE_MATCHED], reserveFailed: c[COUNTER.STATE_RESERVE_FAIL] },
      reset: { matched: c[COUNTER.RESET_MATCHED], reserveFailed: c[COUNTER.RESET_RESERVE_FAIL] },
      icmp: { matched: c[COUNTER.ICMP_MATCHED], reserveFailed: c[COUNTER.ICMP_RESERVE_FAIL] },
      readFailed: c[COUNTER.READ_FAIL],
    }
  }
}

/** Sum of the kernel-side drop causes. */
export function kernelDrops (c: KernelCounters): number {
  return c.state.reserveFailed + c.reset.reserveFailed + c.icmp.reserveFailed
}

export function kernelSubmitted (c: KernelCounters): number {
  return c.state.matched + c.reset.matched + c.icmp.matched - kernelDrops(c)
}

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
