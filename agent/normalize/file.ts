import { HEADER, KIND } from '../../bpf/abi.js'
import { AT_FDCWD, FILE_EVENT, FILE_PATH_FLAG, FILE_SYSCALLS } from '../../bpf/abi-file.js'
import { CLASS, SEVERITY } from '../../shared/ocsf/constants.js'
import { emptyProcInfo } from '../proctable/table.js'
import { encodeStr, type MsgpackWriter } from './pack.js'
import { baseName, commOf, completeFromTable, FILE_REGULAR, PROCESS_PATHS, taskOf, textAt, writeProcess, writeUserName } from './proc-fields.js'
import type { DecodeEnv, Normaliser } from './types.js'

// Raw FILE_EVENTS records → lean OCSF file_activity (1001) records:
//   open with O_CREAT                  Create (1)
//   open with write intent, no O_CREAT Update (3)
//   unlink, rmdir                      Delete (4) (rmdir: a Folder)
//   rename                             Rename (5): file is the old name, file_result the new
//   chmod                              Set Attributes (6)
//   memfd_create                       Create (1), path memfd:NAME
// The kernel emits only write-intent opens (bpf/file.bpf.c). An O_CREAT open
// of a file that already existed is still Create: sys_exit does not say
// whether the file was made. A relative path is kept as the process gave it
// (the kernel reads no cwd): file.path is then relative, and
// unmapped.dirfd says what it is relative to. A failed call is status Failure
// with the errno in status_detail. The acting process, with its ancestry,
// is actor.process (agent/normalize/proc-fields.ts).

const SHAPES = [[
  'class_uid', 'activity_id', 'severity_id', 'time', 'status_id', 'status_detail',
  'file.path', 'file.name', 'file.type_id', 'file_result.path', 'file_result.name', 'file_result.type_id',
  'actor.user.uid', 'actor.user.name',
  ...PROCESS_PATHS.map(p => 'actor.process.' + p),
  'unmapped.syscall', 'unmapped.flags', 'unmapped.mode', 'unmapped.dirfd', 'unmapped.path_truncated',
]]

const ACTIVITY = { CREATE: 1, UPDATE: 3, DELETE: 4, RENAME: 5, SET_ATTRIBUTES: 6 } as const
const STATUS = { SUCCESS: 1, FAILURE: 2 } as const
const O_CREAT = 0o100
const AT_REMOVEDIR = 0x200
const FOLDER = 2
const SYSCALL_NAMES = FILE_SYSCALLS.map(encodeStr)

const self = emptyProcInfo()

function write (w: MsgpackWriter, buf: Uint8Array, dv: DataView, p: number, kind: number, shape0: number, env: DecodeEnv): number {
  const size = dv.getUint16(p + HEADER.size, true)
  const flagsLo = dv.getUint32(p + FILE_EVENT.flags, true)
  const ret = Number(dv.getBigInt64(p + FILE_EVENT.ret, true))
  const sys = buf[p + FILE_EVENT.syscall]
  const pathFlags = buf[p + FILE_EVENT.path_flags]
  let path = textAt(buf, p + FILE_EVENT.path, Math.min(dv.getUint16(p + FILE_EVENT.path_len, true), Math.max(0, size - FILE_EVENT.path), FILE_EVENT.path2 - FILE_EVENT.path))
  let path2 = ''
  let activity: number
  let typeId = FILE_REGULAR
  switch (kind) {
    case KIND.FILE_OPEN: activity = (flagsLo & O_CREAT) !== 0 ? ACTIVITY.CREATE : ACTIVITY.UPDATE; break
    case KIND.FILE_UNLINK:
      activity = ACTIVITY.DELETE
      if ((flagsLo & AT_REMOVEDIR) !== 0 || FILE_SYSCALLS[sys] === 'rmdir') typeId = FOLDER
      break
    case KIND.FILE_RENAME:
      activity = ACTIVITY.RENAME
      path2 = textAt(buf, p + FILE_EVENT.path2, Math.min(dv.getUint16(p + FILE_EVENT.path2_len, true), Math.max(0, size - FILE_EVENT.path2)))
      break
    case KIND.FILE_CHMOD: activity = ACTIVITY.SET_ATTRIBUTES; break
    default: activity = ACTIVITY.CREATE; path = 'memfd:' + path
  }
  if (path === '') return -1
  taskOf(buf, dv, p, self)
  completeFromTable(env.procs, self)
  const keepRaw = env.unmapped !== false
  const bootNs = dv.getUint32(p + HEADER.boot_ns + 4, true) * 4294967296 + dv.getUint32(p + HEADER.boot_ns, true)
  w.arrayHeader(1 + SHAPES[0].length)
  w.uint(shape0)
  w.uint(CLASS.FILE_ACTIVITY.uid)
  w.uint(activity)
  w.uint(SEVERITY.INFORMATIONAL)
  w.f64(Math.floor((bootNs + env.bootToWallNs) / 1e6))
  if (ret < 0) { w.uint(STATUS.FAILURE); w.str(`errno ${-ret}`) } else { w.uint(STATUS.SUCCESS); w.nil() }
  w.str(path)
  w.str(baseName(path))
  w.uint(typeId)
  if (path2 !== '') { w.str(path2); w.str(baseName(path2)); w.uint(typeId) } else { w.nil(); w.nil(); w.nil() }
  w.str(String(self.uid))
  writeUserName(w, self.uid)
  writeProcess(w, env.procs, self, commOf(buf, p), env.bootToWallNs)
  if (keepRaw) {
    const name = SYSCALL_NAMES[sys]
    if (name !== undefined) w.raw(name)
    else w.num(sys)
    w.num(flagsLo)
    w.num(dv.getUint32(p + FILE_EVENT.mode, true))
    const dirfd = dv.getInt32(p + FILE_EVENT.dirfd, true)
    if (dirfd !== AT_FDCWD && !path.startsWith('/')) w.num(dirfd)
    else w.nil()
    if ((pathFlags & (FILE_PATH_FLAG.PATH_TRUNCATED | FILE_PATH_FLAG.PATH2_TRUNCATED)) !== 0) w.bool(true)
    else w.nil()
  } else { w.nil(); w.nil(); w.nil(); w.nil(); w.nil() }
  return 0
}

export const fileClass: Normaliser = {
  name: 'file',
  classUid: CLASS.FILE_ACTIVITY.uid,
  kinds: Object.fromEntries([KIND.FILE_OPEN, KIND.FILE_UNLINK, KIND.FILE_RENAME, KIND.FILE_CHMOD, KIND.FILE_MEMFD].map(k => [k, [FILE_EVENT.path, FILE_EVENT.SIZEOF] as const])),
  shapes: SHAPES,
  write,
}
