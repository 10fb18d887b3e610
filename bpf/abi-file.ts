import type { FieldSpec } from './abi.js'

// The file class (bpf/events-file.h: FILE_EVENTS, file.bpf.c), in the scheme of
// bpf/abi.ts (which holds the header, the kinds and the task info every
// record here starts with). Checked by test/bpf/layout.test.ts.

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

export const PREFIX_MAX = 64
export const AT_FDCWD = -100

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
