import { HEADER, KIND } from '../../bpf/abi.js'
import { EXEC_EVENT, EXEC_FLAG, EXIT_EVENT, EXIT_SOURCE, FORK_EVENT } from '../../bpf/abi-proc.js'
import { CLASS, SEVERITY } from '../../shared/ocsf/constants.js'
import { emptyProcInfo, PROC_FLAG } from '../proctable/table.js'
import type { MsgpackWriter } from './pack.js'
import { commOf, completeFromTable, PROCESS_PATHS, taskOf, textAt, writeProcess, writeUserName } from './proc-fields.js'
import { SKIP, type DecodeEnv, type Normaliser } from './types.js'

// Raw PROC_EVENTS records → lean OCSF process_activity (1007) records:
//   exec                          Launch (1), launch_type_id Exec (3)
//   exit of the last thread       Terminate (2), with exit_code
//   fork (task_newtask)           no record
//   a thread's own exit           no record
//
// Why a fork has no record: OCSF 1.8.0 could say it (Launch with
// launch_type_id Fork), but the child of a fork is a clone still running its
// parent's image and command line, so a record of it would be read by every
// Sigma process_creation rule as a second start of the parent, and on a
// busy host forks outnumber execs. The fork is not lost: the process ring's
// consumer applies it to the process table (agent/proctable), which is how
// the exec that follows names its parent.
//
// The kernel gives no working directory: process.working_directory is the
// one the process table read from /proc (best effort, agent/proctable/
// writer.ts), absent when it could not. A command line the kernel cut (argc
// or bytes) is marked with unmapped.cmd_line_truncated (OCSF has no
// attribute for it).

const SHAPES = [[
  'class_uid', 'activity_id', 'severity_id', 'time', 'launch_type_id', 'exit_code', 'actor.user.uid', 'actor.user.name',
  ...PROCESS_PATHS.map(p => 'process.' + p),
  'unmapped.cmd_line_truncated', 'unmapped.exit_signal', 'unmapped.argv_lost',
]]

const ACTIVITY = { LAUNCH: 1, TERMINATE: 2 } as const
const LAUNCH_TYPE_EXEC = 3

const self = emptyProcInfo()

function write (w: MsgpackWriter, buf: Uint8Array, dv: DataView, p: number, kind: number, shape0: number, env: DecodeEnv): number {
  if (kind === KIND.PROC_FORK) return SKIP
  const exit = kind === KIND.PROC_EXIT
  if (exit && buf[p + EXIT_EVENT.group_dead] === 0) return SKIP
  taskOf(buf, dv, p, self)
  let truncated = false
  let argvLost = false
  if (!exit) {
    const flags = dv.getUint16(p + EXEC_EVENT.flags, true)
    self.path = textAt(buf, p + EXEC_EVENT.filename, Math.min(dv.getUint16(p + EXEC_EVENT.filename_len, true), EXEC_EVENT.interp - EXEC_EVENT.filename))
    const argc = dv.getUint16(p + EXEC_EVENT.argc, true)
    const len = Math.min(dv.getUint16(p + EXEC_EVENT.args_len, true), dv.getUint16(p + HEADER.size, true) - EXEC_EVENT.args)
    let end = len
    while (end > 0 && buf[p + EXEC_EVENT.args + end - 1] === 0) end--
    // argv in the record is NUL-separated: the command line joins it with spaces
    self.cmdLine = argc > 0 && end > 0 ? textAt(buf, p + EXEC_EVENT.args, end).replaceAll('\0', ' ') : self.path
    truncated = (flags & (EXEC_FLAG.ARGC_TRUNCATED | EXEC_FLAG.ARGS_TRUNCATED)) !== 0
    argvLost = argc === 0 && (flags & EXEC_FLAG.NO_ARGS) !== 0
  }
  const known = completeFromTable(env.procs, self)
  if (exit) truncated = (self.flags & PROC_FLAG.CMD_TRUNCATED) !== 0
  const bootNs = dv.getUint32(p + HEADER.boot_ns + 4, true) * 4294967296 + dv.getUint32(p + HEADER.boot_ns, true)
  // a process the table does not know started no later than this record
  if (!known && !exit) self.startBootMs = bootNs / 1e6
  const keepRaw = env.unmapped !== false
  const signal = exit && buf[p + EXIT_EVENT.source] === EXIT_SOURCE.SIGNAL ? dv.getUint32(p + EXIT_EVENT.exit_signal, true) : 0
  w.arrayHeader(1 + SHAPES[0].length)
  w.uint(shape0)
  w.uint(CLASS.PROCESS_ACTIVITY.uid)
  w.uint(exit ? ACTIVITY.TERMINATE : ACTIVITY.LAUNCH)
  w.uint(SEVERITY.INFORMATIONAL)
  w.f64(Math.floor((bootNs + env.bootToWallNs) / 1e6))
  if (exit) w.nil()
  else w.uint(LAUNCH_TYPE_EXEC)
  if (exit && buf[p + EXIT_EVENT.source] === EXIT_SOURCE.EXIT_GROUP) w.num(dv.getUint32(p + EXIT_EVENT.exit_code, true))
  else if (signal > 0) w.num(128 + signal) // as a shell reports a death by signal
  else w.nil()
  w.str(String(self.uid))
  writeUserName(w, self.uid)
  writeProcess(w, env.procs, self, commOf(buf, p), env.bootToWallNs)
  if (truncated) w.bool(true)
  else w.nil()
  if (keepRaw && signal > 0) w.uint(signal)
  else w.nil()
  if (argvLost) w.bool(true)
  else w.nil()
  return 0
}

export const processClass: Normaliser = {
  name: 'process',
  classUid: CLASS.PROCESS_ACTIVITY.uid,
  kinds: {
    [KIND.PROC_EXEC]: [EXEC_EVENT.args, EXEC_EVENT.SIZEOF],
    [KIND.PROC_FORK]: FORK_EVENT.SIZEOF,
    [KIND.PROC_EXIT]: EXIT_EVENT.SIZEOF,
  },
  shapes: SHAPES,
  write,
}
