import type { FieldSpec } from './abi.js'

// The process class (bpf/events-proc.h: PROC_EVENTS, proc.bpf.c), in the scheme
// of bpf/abi.ts (which holds the header, the kinds and the task info every
// record here starts with). Checked by test/bpf/layout.test.ts.

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

export const ARGC_MAX = 20
export const ARGS_MAX = 1024
export const ARG_MAX = 256

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
