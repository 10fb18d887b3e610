import { release } from 'node:os'
import { PicketError } from '../shared/errors.js'
import { rootPath } from '../shared/paths.js'
import { COUNTER } from './abi.js'
import { disabledLayout, encodeNetConfig, icmpLayout, resetLayout, stateLayout, type NetConfig } from './layout.js'
import { ringOptions } from './native-errors.js'
import { BpfObject, Probe, type ProbeOptions, type TracepointRef } from './object.js'
import { findTracefs, parseSymbolic, readFormat, type TpFormat } from './tracefs.js'
import type { KernelCounters, KernelDecodeInfo } from './types.js'

export const NET_OBJECT_PATH = rootPath('bpf', 'build', 'net.bpf.o')

export interface NetProbeOptions extends ProbeOptions {
  /** which programs to attach (default all) */
  programs?: { state?: boolean, reset?: boolean, icmp?: boolean }
  /**
   * Attach a program to a differently named tracepoint (kernels rename them:
   * before 4.16 the state tracepoint was tcp:tcp_set_state). Its format must
   * still carry the fields the program reads.
   */
  tracepoints?: Partial<Record<'state' | 'reset' | 'icmp', TracepointRef>>
  /**
   * Fold repeats of a flow within this many milliseconds into one summary
   * record (count, start and end time); the first event of a flow in a
   * window still goes out at once. 0: every event is a record. Default 1000.
   */
  foldWindowMs?: number
}

interface ProgSpec extends TracepointRef { key: 'state' | 'reset' | 'icmp', prog: string }

export const NET_PROGRAMS: readonly ProgSpec[] = [
  { key: 'state', prog: 'picket_state', category: 'sock', name: 'inet_sock_set_state' },
  { key: 'reset', prog: 'picket_reset', category: 'tcp', name: 'tcp_send_reset' },
  { key: 'icmp', prog: 'picket_icmp', category: 'icmp', name: 'icmp_send' },
]

const DEFAULT_RING = 8 << 20
export const DEFAULT_FOLD_WINDOW_MS = 1000
/** the syscall programs that summarise the folds whose window has closed, and every fold */
const SWEEP_PROG = 'picket_fold_sweep'
const FLUSH_PROG = 'picket_fold_flush'

/**
 * The network capture object: three tracepoint programs feeding NET_EVENTS.
 * Lifecycle as libbpf-bootstrap: open, configure, load, attach; close() detaches.
 */
export class NetProbe extends Probe {
  readonly decodeInfo: KernelDecodeInfo
  readonly config: Readonly<NetConfig>
  readonly #sweep: NodeJS.Timeout | undefined

  private constructor (obj: BpfObject, decodeInfo: KernelDecodeInfo, config: NetConfig) {
    super(obj, 'NET_EVENTS')
    this.decodeInfo = decodeInfo
    this.config = config
    // a window's repeats are summarised at most one window after it closes
    // (a sweep that fails once the probe is up only delays summaries: the next
    // event of the flow summarises its window too)
    if (config.foldWindowMs > 0) this.#sweep = setInterval(() => { try { this.sweep() } catch {} }, config.foldWindowMs).unref()
  }

  /** Emit the summary of every fold whose window has closed (the timer does this; tests call it to not wait). */
  sweep (): void {
    this.obj.run(SWEEP_PROG)
  }

  /** Summarise every fold now, its window closed or not: before the last drain, so no repeat is left in the map. */
  flush (): void {
    if (this.config.foldWindowMs > 0) this.obj.run(FLUSH_PROG)
  }

  override close (): void {
    clearInterval(this.#sweep)
    super.close()
  }

  /** Discover layouts and build the configuration without touching the kernel's BPF side. */
  static configure (opts: NetProbeOptions = {}): { config: NetConfig, decodeInfo: KernelDecodeInfo, ringBytes: number } {
    const { ringBytes, wakeupBytes } = ringOptions(opts, DEFAULT_RING)
    const tracefs = findTracefs(opts.tracefsDir)
    const want = { state: opts.programs?.state ?? true, reset: opts.programs?.reset ?? true, icmp: opts.programs?.icmp ?? true }
    const config: NetConfig = {
      state: disabledLayout(), reset: disabledLayout(), icmp: disabledLayout(),
      wakeupBytes, ignoreTgid: opts.ignoreTgid ?? 0,
      enableState: want.state, enableReset: want.reset, enableIcmp: want.icmp,
      foldWindowMs: opts.foldWindowMs ?? DEFAULT_FOLD_WINDOW_MS,
    }
    let decodeInfo: KernelDecodeInfo = { rstReasons: {}, noSocketReason: 1 }
    const fmtOf = (key: ProgSpec['key']): TpFormat => { const { category, name } = tracepointOf(opts, key); return readFormat(tracefs, category, name) }
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
    const enabled = { state: config.enableState, reset: config.enableReset, icmp: config.enableIcmp }
    const obj = BpfObject.open({
      path: opts.objectPath ?? NET_OBJECT_PATH,
      rings: { NET_EVENTS: ringBytes },
      rodata: { cfg: encodeNetConfig(config) },
      attach: NET_PROGRAMS.filter(p => enabled[p.key]).map(p => ({ prog: p.prog, ...tracepointOf(opts, p.key) })),
    })
    const probe = new NetProbe(obj, decodeInfo, config)
    try {
      if (config.foldWindowMs > 0) probe.sweep() // fail now, not on the timer, if the kernel will not run it
    } catch (err) {
      probe.close()
      throw err
    }
    return probe
  }

  counters (): KernelCounters {
    const C = COUNTER
    return this.namedCounters(C.MAX, {
      state: [C.STATE_MATCHED, C.STATE_RESERVE_FAIL], reset: [C.RESET_MATCHED, C.RESET_RESERVE_FAIL], icmp: [C.ICMP_MATCHED, C.ICMP_RESERVE_FAIL],
      readFailed: C.READ_FAIL, folded: C.FOLDED,
    })
  }
}

function tracepointOf (opts: NetProbeOptions, key: ProgSpec['key']): TracepointRef {
  const { category, name } = opts.tracepoints?.[key] ?? NET_PROGRAMS.find(p => p.key === key)!
  return { category, name }
}

/** Sum of the kernel-side drop causes. */
export function kernelDrops (c: KernelCounters): number {
  return c.state.reserveFailed + c.reset.reserveFailed + c.icmp.reserveFailed
}

export function kernelSubmitted (c: KernelCounters): number {
  return c.state.matched + c.reset.matched + c.icmp.matched - kernelDrops(c)
}
