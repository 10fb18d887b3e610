import { PicketError } from '../shared/errors.js'
import { rootPath } from '../shared/paths.js'
import { encodeStruct, OFF_ABSENT, putFields, SYS_TP_MAX } from './abi.js'
import {
  FILE_CONFIG, FILE_CONFIG_SIZEOF, FILE_COUNTER, FILE_SYSCALLS, PATH_ACTION, PATH_KEY, PREFIX_MAX, SYS_TP, SYS_TP_SIZEOF, type FileSyscall,
} from './abi-file.js'
import { ringOptions } from './native-errors.js'
import { BpfObject, Probe, type ProbeOptions, type TracepointAttach } from './object.js'
import { findTracefs, need, readFormat, readFormatIf, recordSize, sameOffset, sameRecordSize, type TpFormat } from './tracefs.js'
import type { ProgramCounters } from './types.js'

export const FILE_OBJECT_PATH = rootPath('bpf', 'build', 'file.bpf.o')

/**
 * A path rule, evaluated in the kernel (semantics in bpf/file.bpf.c): the
 * longest rule that prefixes an absolute path decides whether it is emitted.
 */
export interface PathRule {
  /** an absolute path prefix, at most PREFIX_MAX bytes (PREFIX_MAX - 1 when exact) */
  prefix: string
  action: 'emit' | 'drop'
  /** match this one path only, not what lies under it */
  exact?: boolean
}

/**
 * Dropped unless told otherwise: what is both frequent and harmless. Writes
 * under /proc and /sys stay (/proc/<pid>/mem, /proc/sys, /sys/kernel are
 * where tampering shows), except cgroup bookkeeping.
 */
export const DEFAULT_PATH_RULES: readonly PathRule[] = [
  { prefix: '/dev/null', action: 'drop', exact: true },
  { prefix: '/dev/zero', action: 'drop', exact: true },
  { prefix: '/dev/ptmx', action: 'drop', exact: true },
  { prefix: '/dev/tty', action: 'drop' },
  { prefix: '/dev/pts/', action: 'drop' },
  { prefix: '/sys/fs/cgroup/', action: 'drop' },
]

export interface FileProbeOptions extends ProbeOptions {
  /** the calls to hook (default: every one this kernel has); a call named here must exist */
  syscalls?: readonly FileSyscall[]
  /** path rules (default DEFAULT_PATH_RULES); change them later with setPathRules */
  pathRules?: readonly PathRule[]
  /** what happens to an absolute path no rule matches (default 'emit') */
  pathDefault?: 'emit' | 'drop'
}

export type SysTpLayout = { -readonly [K in keyof typeof SYS_TP]: number }

export interface FileConfig {
  /** one layout per FILE_SYSCALLS entry; record_size 0 when not hooked */
  sys: SysTpLayout[]
  exitSize: number
  exitNr: number
  exitRet: number
  wakeupBytes: number
  ignoreTgid: number
  pathDefault: number
}

export interface FileCounters {
  file: ProgramCounters
  /** dropped by the path rules */
  filtered: number
  /** calls whose arguments could not be parked between enter and exit */
  pendingFailed: number
  readFailed: number
}

type ArgName = Exclude<keyof SysTpLayout, 'record_size' | 'nr' | 'pad0'>

// Each call's arguments by their names in its format file.
const ARGS: Record<FileSyscall, Partial<Record<ArgName, string>>> = {
  openat: { dfd: 'dfd', path: 'filename', flags: 'flags', mode: 'mode' },
  openat2: { dfd: 'dfd', path: 'filename', how: 'how' },
  open: { path: 'filename', flags: 'flags', mode: 'mode' },
  creat: { path: 'pathname', mode: 'mode' },
  unlinkat: { dfd: 'dfd', path: 'pathname', flags: 'flag' },
  unlink: { path: 'pathname' },
  rmdir: { path: 'pathname' },
  renameat2: { dfd: 'olddfd', path: 'oldname', dfd2: 'newdfd', path2: 'newname', flags: 'flags' },
  renameat: { dfd: 'olddfd', path: 'oldname', dfd2: 'newdfd', path2: 'newname' },
  rename: { path: 'oldname', path2: 'newname' },
  fchmodat: { dfd: 'dfd', path: 'filename', mode: 'mode' },
  fchmodat2: { dfd: 'dfd', path: 'filename', mode: 'mode', flags: 'flags' },
  chmod: { path: 'filename', mode: 'mode' },
  memfd_create: { path: 'uname', flags: 'flags' },
}

/** Calls every supported kernel has; the rest are newer (openat2, fchmodat2) or legacy (x86_64 has them, arm64 not). */
const REQUIRED: readonly FileSyscall[] = ['openat', 'unlinkat', 'renameat2', 'fchmodat', 'memfd_create']

const DEFAULT_RING = 4 << 20

function sysLayout (fmt: TpFormat, sys: FileSyscall): SysTpLayout {
  const l = Object.fromEntries(Object.keys(SYS_TP).map(k => [k, OFF_ABSENT])) as SysTpLayout
  l.record_size = recordSize(fmt, SYS_TP_MAX)
  l.nr = need(fmt, '__syscall_nr', [4])
  l.pad0 = 0
  for (const [arg, field] of Object.entries(ARGS[sys]) as Array<[ArgName, string]>) l[arg] = need(fmt, field, [8])
  return l
}

/** struct picket_file_config from the running kernel's formats, and the programs to attach. */
export function fileLayout (tracefs: string, syscalls?: readonly FileSyscall[]): { config: FileConfig, attach: TracepointAttach[] } {
  const off = Object.fromEntries(Object.keys(SYS_TP).map(k => [k, 0])) as SysTpLayout
  const sys = FILE_SYSCALLS.map(() => ({ ...off }))
  const exits: TpFormat[] = []
  const enters: TracepointAttach[] = []
  const exitTps: TracepointAttach[] = []
  for (const [i, name] of FILE_SYSCALLS.entries()) {
    const wanted = syscalls === undefined || syscalls.includes(name)
    const required = syscalls !== undefined || REQUIRED.includes(name)
    if (!wanted) continue
    const enter = (required ? readFormat : readFormatIf)(tracefs, 'syscalls', `sys_enter_${name}`)
    if (enter === undefined) continue
    sys[i] = sysLayout(enter, name)
    exits.push(readFormat(tracefs, 'syscalls', `sys_exit_${name}`))
    exitTps.push({ prog: 'picket_file_exit', category: 'syscalls', name: `sys_exit_${name}` })
    enters.push({ prog: `picket_enter_${name}`, category: 'syscalls', name: `sys_enter_${name}` })
  }
  if (exits.length === 0) throw new PicketError('PICKET_ERR_CONFIG', 'FileProbe: no syscalls to hook')
  const config: FileConfig = {
    sys,
    exitSize: sameRecordSize(exits, SYS_TP_MAX),
    exitNr: sameOffset(exits, '__syscall_nr', [4]),
    exitRet: sameOffset(exits, 'ret', [8]),
    wakeupBytes: 0,
    ignoreTgid: 0,
    pathDefault: PATH_ACTION.EMIT,
  }
  // exits first: a call parked at enter always finds its exit attached
  return { config, attach: [...exitTps, ...enters] }
}

export function encodeFileConfig (c: FileConfig): Uint8Array {
  const buf = encodeStruct(FILE_CONFIG, FILE_CONFIG_SIZEOF, {
    exit_size: c.exitSize, exit_nr: c.exitNr, exit_ret: c.exitRet, wakeup_bytes: c.wakeupBytes, ignore_tgid: c.ignoreTgid, path_default: c.pathDefault,
  })
  const dv = new DataView(buf.buffer)
  c.sys.forEach((l, i) => putFields(dv, FILE_CONFIG.sys[0] + i * SYS_TP_SIZEOF, SYS_TP, l))
  return buf
}

/** The FILE_PREFIXES key of a rule (struct picket_path_key). */
export function pathKey (rule: PathRule): Uint8Array {
  const bytes = Buffer.from(rule.prefix, 'utf8')
  const n = bytes.length + (rule.exact === true ? 1 : 0)
  if (!rule.prefix.startsWith('/') || n > PREFIX_MAX || bytes.includes(0)) {
    throw new PicketError('PICKET_ERR_CONFIG', `path rule '${rule.prefix}' must be an absolute path of at most ${PREFIX_MAX - (rule.exact === true ? 1 : 0)} bytes without NUL`)
  }
  if (rule.action !== 'emit' && rule.action !== 'drop') throw new PicketError('PICKET_ERR_CONFIG', `path rule '${rule.prefix}': action must be 'emit' or 'drop', got '${String(rule.action)}'`)
  const key = new Uint8Array(PATH_KEY.SIZEOF)
  new DataView(key.buffer).setUint32(PATH_KEY.prefixlen, n * 8, true)
  key.set(bytes, PATH_KEY.data) // an exact rule's NUL is the zero after it
  return key
}

function actionBytes (action: PathRule['action']): Uint8Array {
  const v = new Uint8Array(4)
  new DataView(v.buffer).setUint32(0, action === 'drop' ? PATH_ACTION.DROP : PATH_ACTION.EMIT, true)
  return v
}

/**
 * File telemetry: write-intent opens, unlink, rename, chmod and memfd_create
 * records in FILE_EVENTS, filtered in the kernel by path rules.
 */
export class FileProbe extends Probe {
  readonly config: Readonly<FileConfig>
  #rules: Map<string, Uint8Array>

  private constructor (obj: BpfObject, config: FileConfig, rules: Map<string, Uint8Array>) {
    super(obj, 'FILE_EVENTS')
    this.config = config
    this.#rules = rules
  }

  /** Discover layouts and build the configuration without touching the kernel's BPF side. */
  static configure (opts: FileProbeOptions = {}): { config: FileConfig, attach: TracepointAttach[], ringBytes: number } {
    const { ringBytes, wakeupBytes } = ringOptions(opts, DEFAULT_RING)
    const { config, attach } = fileLayout(findTracefs(opts.tracefsDir), opts.syscalls)
    config.wakeupBytes = wakeupBytes
    config.ignoreTgid = opts.ignoreTgid ?? 0
    const def = opts.pathDefault ?? 'emit'
    if (def !== 'emit' && def !== 'drop') throw new PicketError('PICKET_ERR_CONFIG', `pathDefault must be 'emit' or 'drop', got '${String(def)}'`)
    config.pathDefault = def === 'drop' ? PATH_ACTION.DROP : PATH_ACTION.EMIT
    return { config, attach, ringBytes }
  }

  static open (opts: FileProbeOptions = {}): FileProbe {
    const { config, attach, ringBytes } = FileProbe.configure(opts)
    const rules = ruleKeys(opts.pathRules ?? DEFAULT_PATH_RULES)
    const obj = BpfObject.open({
      path: opts.objectPath ?? FILE_OBJECT_PATH,
      rings: { FILE_EVENTS: ringBytes },
      rodata: { cfg: encodeFileConfig(config) },
      attach,
      // the rules are in place before the first record can be judged
      prepare: o => { for (const { key, value } of rules.values()) o.mapUpdate('FILE_PREFIXES', key, value) },
    })
    return new FileProbe(obj, config, new Map([...rules].map(([k, { key }]) => [k, key])))
  }

  /** Replace the path rules while attached. */
  setPathRules (rules: readonly PathRule[]): void {
    const next = ruleKeys(rules)
    for (const [k, key] of this.#rules) if (!next.has(k)) this.obj.mapDelete('FILE_PREFIXES', key)
    for (const { key, value } of next.values()) this.obj.mapUpdate('FILE_PREFIXES', key, value)
    this.#rules = new Map([...next].map(([k, { key }]) => [k, key]))
  }

  counters (): FileCounters {
    const C = FILE_COUNTER
    return this.namedCounters(C.MAX, {
      file: [C.MATCHED, C.RESERVE_FAIL], filtered: C.FILTERED, pendingFailed: C.PENDING_FAIL, readFailed: C.READ_FAIL,
    })
  }
}

function ruleKeys (rules: readonly PathRule[]): Map<string, { key: Uint8Array, value: Uint8Array }> {
  const out = new Map<string, { key: Uint8Array, value: Uint8Array }>()
  for (const r of rules) {
    const key = pathKey(r)
    out.set(Buffer.from(key).toString('hex'), { key, value: actionBytes(r.action) })
  }
  return out
}
