import { rootPath } from '../shared/paths.js'
import { encodeStruct, OFF_ABSENT, SYS_TP_MAX } from './abi.js'
import { PROC_CONFIG, PROC_CONFIG_SIZEOF, PROC_COUNTER } from './abi-proc.js'
import { ringOptions } from './native-errors.js'
import { BpfObject, Probe, type ProbeOptions, type TracepointAttach } from './object.js'
import { findTracefs, need, needLoc, optional, readFormat, readFormatIf, recordSize, sameOffset, sameRecordSize, type TpFormat } from './tracefs.js'
import type { ProgramCounters } from './types.js'

export const PROC_OBJECT_PATH = rootPath('bpf', 'build', 'proc.bpf.o')

export interface ProcProbeOptions extends ProbeOptions {
  /** which records to produce (default all) */
  programs?: { exec?: boolean, fork?: boolean, exit?: boolean }
  /** also report thread creation and thread exits, marked (default false: processes only) */
  threads?: boolean
}

export type ProcConfig = { -readonly [K in keyof typeof PROC_CONFIG]: number }

export interface ProcCounters {
  exec: ProgramCounters
  fork: ProgramCounters
  exit: ProgramCounters
  /** exec records without argv: the exec began before attach, or its parked entry was lost */
  execNoArgs: number
  /** bpf_probe_read_kernel of a tracepoint record failed */
  readFailed: number
}

const DEFAULT_RING = 4 << 20

const tp = (prog: string, category: string, name: string): TracepointAttach => ({ prog, category, name })

// Consumers before producers: a parked exec or exit status is never left
// without the program that takes it, even while attaching.
const EXEC_TPS = {
  exec: tp('picket_exec', 'sched', 'sched_process_exec'),
  prepare: tp('picket_prepare_exec', 'sched', 'sched_prepare_exec'),
  execveExit: tp('picket_execve_exit', 'syscalls', 'sys_exit_execve'),
  execveatExit: tp('picket_execve_exit', 'syscalls', 'sys_exit_execveat'),
  execve: tp('picket_execve', 'syscalls', 'sys_enter_execve'),
  execveat: tp('picket_execveat', 'syscalls', 'sys_enter_execveat'),
}
const FORK_TP = tp('picket_fork', 'task', 'task_newtask')
const EXIT_TPS = {
  exit: tp('picket_exit', 'sched', 'sched_process_exit'),
  exitGroup: tp('picket_exit_group', 'syscalls', 'sys_enter_exit_group'),
  signal: tp('picket_signal', 'signal', 'signal_deliver'),
}

export const PROC_TRACEPOINTS: readonly TracepointAttach[] = [...Object.values(EXEC_TPS), FORK_TP, ...Object.values(EXIT_TPS)]

/**
 * Build struct picket_proc_config from the running kernel's tracepoint
 * formats, and the list of programs to attach.
 */
export function procLayout (tracefs: string, want: { exec: boolean, fork: boolean, exit: boolean }): { config: ProcConfig, attach: TracepointAttach[] } {
  const c = Object.fromEntries(Object.keys(PROC_CONFIG).map(k => [k, 0])) as ProcConfig
  const attach: TracepointAttach[] = []
  const fmt = (t: TracepointAttach): TpFormat => readFormat(tracefs, t.category, t.name)
  const size = (f: TpFormat): number => recordSize(f, SYS_TP_MAX)
  if (want.exec) {
    const exec = fmt(EXEC_TPS.exec)
    c.exec_size = size(exec)
    c.exec_filename = needLoc(exec, 'filename')
    c.exec_old_pid = need(exec, 'old_pid', [4])
    const prepare = readFormatIf(tracefs, EXEC_TPS.prepare.category, EXEC_TPS.prepare.name)
    if (prepare !== undefined) {
      c.prepare_size = size(prepare)
      c.prepare_interp = needLoc(prepare, 'interp')
    }
    const execve = fmt(EXEC_TPS.execve)
    const execveat = fmt(EXEC_TPS.execveat)
    c.execve_size = size(execve)
    c.execve_argv = need(execve, 'argv', [8])
    c.execveat_size = size(execveat)
    c.execveat_argv = need(execveat, 'argv', [8])
    const exits = [fmt(EXEC_TPS.execveExit), fmt(EXEC_TPS.execveatExit)]
    c.execve_exit_size = sameRecordSize(exits, SYS_TP_MAX)
    c.execve_exit_ret = sameOffset(exits, 'ret', [8])
    attach.push(EXEC_TPS.exec, ...(prepare !== undefined ? [EXEC_TPS.prepare] : []), EXEC_TPS.execveExit, EXEC_TPS.execveatExit, EXEC_TPS.execve, EXEC_TPS.execveat)
  }
  if (want.fork) {
    const f = fmt(FORK_TP)
    c.newtask_size = size(f)
    c.newtask_pid = need(f, 'pid', [4])
    c.newtask_clone_flags = need(f, 'clone_flags', [8])
    attach.push(FORK_TP)
  }
  if (want.exit) {
    const exit = fmt(EXIT_TPS.exit)
    c.exit_size = size(exit)
    c.exit_group_dead = optional(exit, 'group_dead', [1], OFF_ABSENT)
    const group = fmt(EXIT_TPS.exitGroup)
    c.exit_group_size = size(group)
    c.exit_group_code = need(group, 'error_code', [8])
    const signal = fmt(EXIT_TPS.signal)
    c.signal_size = size(signal)
    c.signal_sig = need(signal, 'sig', [4])
    c.signal_handler = need(signal, 'sa_handler', [8])
    attach.push(EXIT_TPS.exit, EXIT_TPS.exitGroup, EXIT_TPS.signal)
  }
  c.enable_exec = want.exec ? 1 : 0
  c.enable_fork = want.fork ? 1 : 0
  c.enable_exit = want.exit ? 1 : 0
  return { config: c, attach }
}

export function encodeProcConfig (c: ProcConfig): Uint8Array {
  return encodeStruct(PROC_CONFIG, PROC_CONFIG_SIZEOF, c)
}

/**
 * Process telemetry: exec (with argv), fork and exit records in PROC_EVENTS.
 * Lifecycle as NetProbe: open (configure, load, attach), drain ringFd with
 * openRing, close.
 */
export class ProcProbe extends Probe {
  readonly config: Readonly<ProcConfig>

  private constructor (obj: BpfObject, config: ProcConfig) {
    super(obj, 'PROC_EVENTS')
    this.config = config
  }

  /** Discover layouts and build the configuration without touching the kernel's BPF side. */
  static configure (opts: ProcProbeOptions = {}): { config: ProcConfig, attach: TracepointAttach[], ringBytes: number } {
    const { ringBytes, wakeupBytes } = ringOptions(opts, DEFAULT_RING)
    const want = { exec: opts.programs?.exec ?? true, fork: opts.programs?.fork ?? true, exit: opts.programs?.exit ?? true }
    const { config, attach } = procLayout(findTracefs(opts.tracefsDir), want)
    config.wakeup_bytes = wakeupBytes
    config.ignore_tgid = opts.ignoreTgid ?? 0
    config.threads = opts.threads === true ? 1 : 0
    return { config, attach, ringBytes }
  }

  static open (opts: ProcProbeOptions = {}): ProcProbe {
    const { config, attach, ringBytes } = ProcProbe.configure(opts)
    const obj = BpfObject.open({
      path: opts.objectPath ?? PROC_OBJECT_PATH,
      rings: { PROC_EVENTS: ringBytes },
      rodata: { cfg: encodeProcConfig(config) },
      attach,
    })
    return new ProcProbe(obj, config)
  }

  counters (): ProcCounters {
    const C = PROC_COUNTER
    return this.namedCounters(C.MAX, {
      exec: [C.EXEC_MATCHED, C.EXEC_RESERVE_FAIL], fork: [C.FORK_MATCHED, C.FORK_RESERVE_FAIL], exit: [C.EXIT_MATCHED, C.EXIT_RESERVE_FAIL],
      execNoArgs: C.EXEC_NO_ARGS, readFailed: C.READ_FAIL,
    })
  }
}

/** Records PROC_EVENTS lost because the ring was full. */
export function procDrops (c: ProcCounters): number {
  return c.exec.reserveFailed + c.fork.reserveFailed + c.exit.reserveFailed
}
