// The TypeScript mirror of bpf/events.h's process and file telemetry:
// record offsets, the .rodata configuration, and constants. Kept apart from
// any loader so it can join the shared kernel ABI module as it is;
// test/bpf/layout.test.ts compiles bpf/layout-print.c against events.h and
// checks every number here. Config fields are [offset, bytes].

/** struct picket_event_header, which every record starts with (the same numbers as the net mirror's HEADER) */
export const EVENT_HEADER = { kind: 0, size: 2, cpu: 4, boot_ns: 8, pid: 16, tgid: 20, comm: 24, COMM_LEN: 16, SIZEOF: 40 } as const

export const TASK_INFO = { cgroup_id: 0, uid: 8, gid: 12, SIZEOF: 16 } as const

export const EXEC_EVENT = {
  task: 40,
  old_pid: 56,
  argc: 60,
  args_len: 62,
  filename_len: 64,
  interp_len: 66,
  flags: 68,
  pad0: 70,
  filename: 72,
  interp: 328,
  args: 584,
  SIZEOF: 1608,
} as const

export const FORK_EVENT = {
  task: 40,
  clone_flags: 56,
  child_pid: 64,
  child_tgid: 68,
  thread: 72,
  pad0: 73,
  SIZEOF: 80,
} as const

export const EXIT_EVENT = {
  task: 40,
  exit_code: 56,
  exit_signal: 60,
  source: 64,
  group_dead: 65,
  pad0: 66,
  SIZEOF: 72,
} as const

export const FILE_EVENT = {
  task: 40,
  ret: 56,
  flags: 64,
  dirfd: 72,
  dirfd2: 76,
  mode: 80,
  path_len: 84,
  path2_len: 86,
  syscall: 88,
  path_flags: 89,
  pad0: 90,
  path: 96,
  path2: 352,
  SIZEOF: 608,
} as const

export const PROC_KIND = { EXEC: 16, FORK: 17, EXIT: 18 } as const
export const FILE_KIND = { OPEN: 32, UNLINK: 33, RENAME: 34, CHMOD: 35, MEMFD: 36 } as const

export const SYS_TP_MAX = 64
export const PATH_MAX = 256
export const ARGC_MAX = 20
export const ARGS_MAX = 1024
export const ARG_MAX = 256
export const PREFIX_MAX = 64
export const AT_FDCWD = -100
/** PICKET_OFF_ABSENT: a field the running kernel's format lacks */
export const OFF_ABSENT = 0xffff

export const EXEC_FLAG = {
  ARGC_TRUNCATED: 0x01,
  ARGS_TRUNCATED: 0x02,
  NO_ARGS: 0x04,
  ARGV_FAULT: 0x08,
  FILENAME_TRUNCATED: 0x10,
  EXECVEAT: 0x20,
} as const

export const EXIT_SOURCE = { UNKNOWN: 0, EXIT_GROUP: 1, SIGNAL: 2 } as const

export const PROC_COUNTER = {
  EXEC_MATCHED: 0,
  EXEC_RESERVE_FAIL: 1,
  FORK_MATCHED: 2,
  FORK_RESERVE_FAIL: 3,
  EXIT_MATCHED: 4,
  EXIT_RESERVE_FAIL: 5,
  EXEC_NO_ARGS: 6,
  READ_FAIL: 7,
  MAX: 8,
} as const

/** enum picket_file_syscall: the record's `syscall` and the index into FILE_CONFIG.sys */
export const FILE_SYSCALLS = [
  'openat', 'openat2', 'open', 'creat', 'unlinkat', 'unlink', 'rmdir', 'renameat2', 'renameat', 'rename',
  'fchmodat', 'fchmodat2', 'chmod', 'memfd_create',
] as const
export type FileSyscall = typeof FILE_SYSCALLS[number]

export const FILE_PATH_FLAG = { PATH_TRUNCATED: 0x01, PATH2_TRUNCATED: 0x02, PATH_FAULT: 0x04 } as const

export const FILE_COUNTER = {
  MATCHED: 0,
  RESERVE_FAIL: 1,
  FILTERED: 2,
  PENDING_FAIL: 3,
  READ_FAIL: 4,
  MAX: 5,
} as const

export const PATH_ACTION = { EMIT: 1, DROP: 2 } as const

export const PATH_KEY = { prefixlen: 0, data: 4, SIZEOF: 68 } as const

export type FieldSpec = Readonly<Record<string, readonly [offset: number, bytes: number]>>

export const PROC_CONFIG = {
  exec_size: [0, 2],
  exec_filename: [2, 2],
  exec_old_pid: [4, 2],
  prepare_size: [6, 2],
  prepare_interp: [8, 2],
  execve_size: [10, 2],
  execve_argv: [12, 2],
  execveat_size: [14, 2],
  execveat_argv: [16, 2],
  execve_exit_size: [18, 2],
  execve_exit_ret: [20, 2],
  newtask_size: [22, 2],
  newtask_pid: [24, 2],
  newtask_clone_flags: [26, 2],
  exit_size: [28, 2],
  exit_group_dead: [30, 2],
  exit_group_size: [32, 2],
  exit_group_code: [34, 2],
  signal_size: [36, 2],
  signal_sig: [38, 2],
  signal_handler: [40, 2],
  pad0: [42, 2],
  wakeup_bytes: [44, 4],
  ignore_tgid: [48, 4],
  enable_exec: [52, 1],
  enable_fork: [53, 1],
  enable_exit: [54, 1],
  threads: [55, 1],
} as const satisfies FieldSpec
export const PROC_CONFIG_SIZEOF = 56

export const SYS_TP = {
  record_size: [0, 2],
  nr: [2, 2],
  dfd: [4, 2],
  path: [6, 2],
  dfd2: [8, 2],
  path2: [10, 2],
  flags: [12, 2],
  mode: [14, 2],
  how: [16, 2],
  pad0: [18, 2],
} as const satisfies FieldSpec
export const SYS_TP_SIZEOF = 20

export const FILE_CONFIG = {
  sys: [0, SYS_TP_SIZEOF * FILE_SYSCALLS.length],
  exit_size: [280, 2],
  exit_nr: [282, 2],
  exit_ret: [284, 2],
  pad0: [286, 2],
  wakeup_bytes: [288, 4],
  ignore_tgid: [292, 4],
  path_default: [296, 1],
  pad1: [297, 3],
} as const satisfies FieldSpec
export const FILE_CONFIG_SIZEOF = 300

/** Write `values` into `dv` at `base` as the little-endian fields of `spec`; unnamed fields stay zero. */
export function putFields<S extends FieldSpec> (dv: DataView, base: number, spec: S, values: Partial<Record<keyof S, number>>): void {
  for (const [name, v] of Object.entries(values) as Array<[keyof S & string, number | undefined]>) {
    if (v === undefined) continue
    const [off, bytes] = spec[name]
    if (bytes === 1) dv.setUint8(base + off, v)
    else if (bytes === 2) dv.setUint16(base + off, v, true)
    else if (bytes === 4) dv.setUint32(base + off, v, true)
    else throw new Error(`putFields: ${name} is ${bytes} bytes, not a scalar`)
  }
}
