import { readFileSync } from 'node:fs'
import { HEADER, TASK_INFO } from '../../bpf/abi.js'
import { ancestry, emptyProcInfo, PROC_FLAG, type ProcInfo, type ProcTableReader } from '../proctable/table.js'
import type { MsgpackWriter } from './pack.js'

// The OCSF process object as every class writes it (process_activity's
// `process`, file_activity's and network_activity's `actor.process`): the
// process, its user, its parent and grandparent, and its lineage, from the
// process table (agent/proctable). One list of paths, one writer, so the
// Sigma field map (Image, ParentImage, CommandLine, ...) reads the same
// paths in every class.

/** Ancestors written as nested parent_process objects; the lineage goes further. */
const NESTED = 2
const LINEAGE_MAX = 8

const ENTITY = ['pid', 'file.path', 'file.name', 'file.type_id', 'cmd_line'] as const
/** the process object's paths, relative to where it is put */
export const PROCESS_PATHS: readonly string[] = [
  'pid', 'name', 'file.path', 'file.name', 'file.type_id', 'cmd_line', 'working_directory', 'created_time', 'user.uid', 'user.name',
  ...Array.from({ length: NESTED }, (_, i) => ENTITY.map(f => 'parent_process.'.repeat(i + 1) + f)).flat(),
  'lineage',
]

/** OCSF file type_id: Regular File (an executable image is one) */
export const FILE_REGULAR = 1

// ---- user names, from /etc/passwd, read again when a uid is not in it (at most every 10 s)
let users = new Map<number, string>()
let usersReadAt = -Infinity
export function userName (uid: number): string | undefined {
  const name = users.get(uid)
  if (name !== undefined || performance.now() - usersReadAt < 10_000) return name
  usersReadAt = performance.now()
  const m = new Map<number, string>()
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const f = line.split(':')
      if (f.length >= 3 && /^\d+$/.test(f[2])) m.set(Number(f[2]), f[0])
    }
  } catch {}
  users = m
  return m.get(uid)
}

/** user.name of uid, or nil */
export function writeUserName (w: MsgpackWriter, uid: number): void {
  const name = userName(uid)
  if (name !== undefined) w.str(name)
  else w.nil()
}

export function baseName (path: string): string {
  const i = path.lastIndexOf('/')
  return i < 0 || i === path.length - 1 ? path : path.slice(i + 1)
}

export function textAt (buf: Uint8Array, off: number, len: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + off, len).toString('utf8')
}

/** The record's task: pid, comm and uid from its header and task info. */
export function taskOf (buf: Uint8Array, dv: DataView, p: number, into: ProcInfo): ProcInfo {
  into.pid = dv.getUint32(p + HEADER.tgid, true)
  into.uid = dv.getUint32(p + HEADER.SIZEOF + TASK_INFO.uid, true)
  into.ppid = 0
  into.flags = 0
  into.startBootMs = 0
  into.exitBootMs = 0
  into.path = ''
  into.cmdLine = ''
  into.cwd = ''
  return into
}

export function commOf (buf: Uint8Array, p: number): string {
  let n = 0
  while (n < HEADER.COMM_LEN && buf[p + HEADER.comm + n] !== 0) n++
  return Buffer.from(buf.buffer, buf.byteOffset + p + HEADER.comm, n).toString('latin1')
}

const chain: ProcInfo[] = []
const found = emptyProcInfo()

/**
 * Look `self.pid` up in the table and complete `self` with what it holds
 * (the caller's own fields, from the record, win). True if it was there.
 */
export function completeFromTable (procs: ProcTableReader | undefined, self: ProcInfo): boolean {
  if (procs === undefined || !procs.lookup(self.pid, found)) return false
  self.ppid = found.ppid
  // -1: the record has no task info (a network record): the table's
  if (self.uid === -1) self.uid = found.uid
  self.startBootMs = found.startBootMs
  if (self.path === '') { self.path = found.path; self.flags |= found.flags & PROC_FLAG.PATH_TRUNCATED }
  if (self.cmdLine === '') { self.cmdLine = found.cmdLine; self.flags |= found.flags & PROC_FLAG.CMD_TRUNCATED }
  self.cwd = found.cwd
  return true
}

const wallMs = (bootMs: number, bootToWallNs: number): number => Math.floor(bootMs + bootToWallNs / 1e6)

/**
 * The values of PROCESS_PATHS, in order, for `self` (completed) and its
 * ancestry from the table; `from` 2: without the first two (pid and name,
 * which the network class writes from its own struct).
 */
export function writeProcess (w: MsgpackWriter, procs: ProcTableReader | undefined, self: ProcInfo, comm: string, bootToWallNs: number, from: 0 | 2 = 0): void {
  if (from === 0) {
    w.uint(self.pid)
    w.str(comm)
  }
  writeImage(w, self.path)
  if (self.cmdLine !== '') w.str(self.cmdLine)
  else w.nil()
  if (self.cwd !== '') w.str(self.cwd)
  else w.nil()
  if (self.startBootMs > 0) w.f64(wallMs(self.startBootMs, bootToWallNs))
  else w.nil()
  w.str(String(self.uid))
  writeUserName(w, self.uid)
  const up = procs !== undefined ? ancestry(procs, self, LINEAGE_MAX, chain) : []
  for (let i = 0; i < NESTED; i++) {
    const a = up[i]
    if (a === undefined) { for (let j = 0; j < ENTITY.length; j++) w.nil(); continue }
    w.uint(a.pid)
    writeImage(w, a.path)
    if (a.cmdLine !== '') w.str(a.cmdLine)
    else w.nil()
  }
  // root first, the process itself last (OCSF's example: sshd, bash, whoami)
  let n = self.path !== '' ? 1 : 0
  for (const a of up) if (a.path !== '') n++
  if (n === 0) { w.nil(); return }
  w.arrayHeader(n)
  for (let i = up.length - 1; i >= 0; i--) if (up[i].path !== '') w.str(up[i].path)
  if (self.path !== '') w.str(self.path)
}

/** file.path, file.name, file.type_id (absent together: OCSF's file requires name and type_id) */
function writeImage (w: MsgpackWriter, path: string): void {
  if (path === '') { w.nil(); w.nil(); w.nil(); return }
  w.str(path)
  w.str(baseName(path))
  w.uint(FILE_REGULAR)
}
