import { KIND, TASK_INFO } from './abi.js'
import { FILE_EVENT, FILE_SYSCALLS, type FileSyscall } from './abi-file.js'
import { EXEC_EVENT, EXEC_FLAG, EXIT_EVENT, FORK_EVENT } from './abi-proc.js'
import { readHeader, type RawHeader } from './records.js'

// Decoders of the process and file records (bpf/events.h) into plain
// objects: the kernel's words, no OCSF yet. Strings the kernel copied from
// user space are attacker-controlled: decoded lossily, never thrown on.

export interface TaskInfo { cgroupId: bigint, uid: number, gid: number }

export interface RecordBase extends RawHeader {
  task: TaskInfo
}

export interface ExecRecord extends RecordBase {
  type: 'exec'
  oldPid: number
  filename: string
  /** '' when the kernel has no sched_prepare_exec */
  interp: string
  argv: string[]
  /** EXEC_FLAG bits */
  flags: number
  /** arguments or bytes were cut (EXEC_FLAG.ARGC_TRUNCATED | ARGS_TRUNCATED) */
  truncated: boolean
}

export interface ForkRecord extends RecordBase {
  type: 'fork'
  cloneFlags: bigint
  childPid: number
  childTgid: number
  thread: boolean
}

export interface ExitRecord extends RecordBase {
  type: 'exit'
  exitCode: number
  exitSignal: number
  /** EXIT_SOURCE */
  source: number
  groupDead: boolean
}

export type FileOp = 'open' | 'unlink' | 'rename' | 'chmod' | 'memfd'

export interface FileRecord extends RecordBase {
  type: FileOp
  syscall: FileSyscall | 'unknown'
  ret: number
  flags: number
  dirfd: number
  dirfd2: number
  mode: number
  path: string
  /** rename: the new name; '' otherwise */
  path2: string
  /** FILE_PATH_FLAG bits */
  pathFlags: number
}

export type ProcRecord = ExecRecord | ForkRecord | ExitRecord

const FILE_OPS: Record<number, FileOp> = {
  [KIND.FILE_OPEN]: 'open', [KIND.FILE_UNLINK]: 'unlink', [KIND.FILE_RENAME]: 'rename', [KIND.FILE_CHMOD]: 'chmod', [KIND.FILE_MEMFD]: 'memfd',
}

function text (buf: Uint8Array, off: number, len: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + off, len).toString('utf8')
}

function base (buf: Uint8Array, dv: DataView, p: number): RecordBase {
  return {
    ...readHeader(buf, p, dv),
    task: {
      // every record's task info follows the header, at the same offset
      cgroupId: dv.getBigUint64(p + EXEC_EVENT.task + TASK_INFO.cgroup_id, true),
      uid: dv.getUint32(p + EXEC_EVENT.task + TASK_INFO.uid, true),
      gid: dv.getUint32(p + EXEC_EVENT.task + TASK_INFO.gid, true),
    },
  }
}

/** argc NUL-terminated strings in len bytes */
function argvAt (buf: Uint8Array, off: number, len: number, argc: number): string[] {
  const out: string[] = []
  let p = off
  const end = off + len
  while (out.length < argc && p < end) {
    let q = p
    while (q < end && buf[q] !== 0) q++
    out.push(text(buf, p, q - p))
    p = q + 1
  }
  return out
}

/** A PROC_EVENTS record at p, or undefined for a kind this decoder does not know. */
export function decodeProcRecord (buf: Uint8Array, p: number): ProcRecord | undefined {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const b = base(buf, dv, p)
  switch (b.kind) {
    case KIND.PROC_EXEC: {
      const flags = dv.getUint16(p + EXEC_EVENT.flags, true)
      return {
        ...b,
        type: 'exec',
        oldPid: dv.getUint32(p + EXEC_EVENT.old_pid, true),
        filename: text(buf, p + EXEC_EVENT.filename, dv.getUint16(p + EXEC_EVENT.filename_len, true)),
        interp: text(buf, p + EXEC_EVENT.interp, dv.getUint16(p + EXEC_EVENT.interp_len, true)),
        argv: argvAt(buf, p + EXEC_EVENT.args, dv.getUint16(p + EXEC_EVENT.args_len, true), dv.getUint16(p + EXEC_EVENT.argc, true)),
        flags,
        truncated: (flags & (EXEC_FLAG.ARGC_TRUNCATED | EXEC_FLAG.ARGS_TRUNCATED)) !== 0,
      }
    }
    case KIND.PROC_FORK:
      return {
        ...b,
        type: 'fork',
        cloneFlags: dv.getBigUint64(p + FORK_EVENT.clone_flags, true),
        childPid: dv.getUint32(p + FORK_EVENT.child_pid, true),
        childTgid: dv.getUint32(p + FORK_EVENT.child_tgid, true),
        thread: buf[p + FORK_EVENT.thread] !== 0,
      }
    case KIND.PROC_EXIT:
      return {
        ...b,
        type: 'exit',
        exitCode: dv.getUint32(p + EXIT_EVENT.exit_code, true),
        exitSignal: dv.getUint32(p + EXIT_EVENT.exit_signal, true),
        source: buf[p + EXIT_EVENT.source],
        groupDead: buf[p + EXIT_EVENT.group_dead] !== 0,
      }
    default:
      return undefined
  }
}

/** A FILE_EVENTS record at p, or undefined for a kind this decoder does not know. */
export function decodeFileRecord (buf: Uint8Array, p: number): FileRecord | undefined {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const b = base(buf, dv, p)
  const type = FILE_OPS[b.kind]
  if (type === undefined) return undefined
  return {
    ...b,
    type,
    syscall: FILE_SYSCALLS[buf[p + FILE_EVENT.syscall]] ?? 'unknown',
    ret: Number(dv.getBigInt64(p + FILE_EVENT.ret, true)),
    flags: Number(dv.getBigUint64(p + FILE_EVENT.flags, true)),
    dirfd: dv.getInt32(p + FILE_EVENT.dirfd, true),
    dirfd2: dv.getInt32(p + FILE_EVENT.dirfd2, true),
    mode: dv.getUint32(p + FILE_EVENT.mode, true),
    path: text(buf, p + FILE_EVENT.path, dv.getUint16(p + FILE_EVENT.path_len, true)),
    path2: type === 'rename' ? text(buf, p + FILE_EVENT.path2, dv.getUint16(p + FILE_EVENT.path2_len, true)) : '',
    pathFlags: buf[p + FILE_EVENT.path_flags],
  }
}
