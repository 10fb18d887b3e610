import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { HEADER, KIND, TASK_INFO } from '../../bpf/abi.js'
import { EXEC_EVENT, EXIT_EVENT, FORK_EVENT } from '../../bpf/abi-proc.js'
import {
  CMD_AT, CMD_BYTES, COUNTER, CWD_AT, CWD_BYTES, F64_AT, GENERATION, home, WATERMARK, PATH_AT, PATH_BYTES, PROBE, PROC_FLAG, SLOT_BYTES, SLOT_WORD as W, TableViews, type ProcTableShape,
} from './table.js'

// The process table's one writer (design in table.ts): it runs in the
// process ring's consumer thread, applies each slab's exec, fork and exit
// records in ring order before the slab goes to the decoders, and was
// seeded from /proc before the first drain. Exited processes stay KEEP_MS
// for late joins (a connect decoded after its process's exit), then go.
//
// The kernel records carry no working directory: it is read from the
// process's own /proc/PID/cwd when its fork or exec is applied (a few
// milliseconds later), and is absent when the process is gone by then (most
// short-lived commands). Never the parent's: a child that chdirs between
// fork and exec (a spawn with a cwd) would be given a wrong one.

/** how long an exited process stays for records that name it late */
export const KEEP_EXITED_MS = 10_000
const SWEEP_EVERY_MS = 1000
const CLK_TCK_MS = 10

export class ProcTableWriter {
  readonly #v: TableViews
  readonly #keepMs: number
  #nowMs = 0
  #sweptAt = 0

  constructor (shape: ProcTableShape, keepExitedMs = KEEP_EXITED_MS) {
    this.#v = new TableViews(shape)
    this.#keepMs = keepExitedMs
  }

  /** Apply the PROC_EVENTS records in [off, off + len) of buf. */
  apply (buf: Uint8Array, off: number, len: number): void {
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    const end = off + len
    const c = this.#v.counters
    let p = off
    while (p + HEADER.SIZEOF <= end) {
      const kind = dv.getUint16(p + HEADER.kind, true)
      const size = dv.getUint16(p + HEADER.size, true)
      if (size < HEADER.SIZEOF || p + size > end) break
      const tgid = dv.getUint32(p + HEADER.tgid, true)
      this.#nowMs = (dv.getUint32(p + HEADER.boot_ns + 4, true) * 4294967296 + dv.getUint32(p + HEADER.boot_ns, true)) / 1e6
      if (kind === KIND.PROC_FORK && size >= FORK_EVENT.SIZEOF && buf[p + FORK_EVENT.thread] === 0) {
        c[COUNTER.FORKS]++
        this.#fork(tgid, dv.getUint32(p + FORK_EVENT.child_tgid, true), dv.getUint32(p + EXEC_EVENT.task + TASK_INFO.uid, true))
      } else if (kind === KIND.PROC_EXEC && size >= EXEC_EVENT.args) {
        c[COUNTER.EXECS]++
        this.#exec(buf, dv, p, tgid, size)
      } else if (kind === KIND.PROC_EXIT && size >= EXIT_EVENT.SIZEOF && buf[p + EXIT_EVENT.group_dead] !== 0) {
        c[COUNTER.EXITS]++
        this.#exit(tgid)
      }
      p += size
    }
    if (this.#nowMs - this.#sweptAt >= SWEEP_EVERY_MS) this.sweep(this.#nowMs)
  }

  #fork (parent: number, child: number, uid: number): void {
    const v = this.#v
    const ps = this.#find(parent)
    const s = this.#slotFor(child)
    if (s < 0) return
    this.#begin(s)
    const w0 = v.word(s, 0)
    v.i32[w0 + W.PID] = child
    v.i32[w0 + W.PPID] = parent
    v.i32[w0 + W.UID] = uid
    const base = s * SLOT_BYTES
    v.f64[(base + F64_AT) / 8] = this.#nowMs
    v.f64[(base + F64_AT) / 8 + 1] = 0
    if (ps >= 0) {
      // a fork is a clone: the child runs its parent's image until it execs
      const pw = v.word(ps, 0)
      const pbase = ps * SLOT_BYTES
      v.i32[w0 + W.FLAGS] = v.i32[pw + W.FLAGS] & (PROC_FLAG.CMD_TRUNCATED | PROC_FLAG.PATH_TRUNCATED)
      v.i32[w0 + W.PATH_LEN] = v.i32[pw + W.PATH_LEN]
      v.i32[w0 + W.CMD_LEN] = v.i32[pw + W.CMD_LEN]
      v.u8.copyWithin(base + PATH_AT, pbase + PATH_AT, pbase + CMD_AT + CMD_BYTES)
    } else {
      v.i32[w0 + W.FLAGS] = 0
      v.i32[w0 + W.PATH_LEN] = 0
      v.i32[w0 + W.CMD_LEN] = 0
    }
    v.i32[w0 + W.CWD_LEN] = 0
    this.#setCwd(s, cwdOf(child))
    this.#end(s)
  }

  /** Slot s's cwd, if known (inside the slot's write section). */
  #setCwd (s: number, cwd: string | undefined): void {
    if (cwd === undefined) return
    const v = this.#v
    const b = Buffer.from(cwd)
    const n = Math.min(b.length, CWD_BYTES)
    v.u8.set(b.subarray(0, n), s * SLOT_BYTES + CWD_AT)
    v.i32[v.word(s, W.CWD_LEN)] = n
  }

  #exec (buf: Uint8Array, dv: DataView, p: number, tgid: number, size: number): void {
    const v = this.#v
    let s = this.#find(tgid)
    const known = s >= 0
    if (!known) {
      v.counters[COUNTER.MISSES]++
      s = this.#slotFor(tgid)
      if (s < 0) return
    }
    const w0 = v.word(s, 0)
    const base = s * SLOT_BYTES
    const pathLen = Math.min(dv.getUint16(p + EXEC_EVENT.filename_len, true), PATH_BYTES - 1)
    const argsLen = Math.min(dv.getUint16(p + EXEC_EVENT.args_len, true), size - EXEC_EVENT.args)
    const argc = dv.getUint16(p + EXEC_EVENT.argc, true)
    const kflags = dv.getUint16(p + EXEC_EVENT.flags, true)
    // the fork that made it was before attach: its parent from /proc, while it still runs
    const ppid = known ? v.i32[w0 + W.PPID] : statOf(tgid)?.ppid ?? 0
    const cwd = cwdOf(tgid)
    this.#begin(s)
    v.i32[w0 + W.CWD_LEN] = 0
    this.#setCwd(s, cwd)
    v.i32[w0 + W.PID] = tgid
    v.i32[w0 + W.PPID] = ppid
    v.i32[w0 + W.UID] = dv.getUint32(p + EXEC_EVENT.task + TASK_INFO.uid, true)
    if (!known) v.f64[(base + F64_AT) / 8] = this.#nowMs
    v.f64[(base + F64_AT) / 8 + 1] = 0
    v.u8.set(buf.subarray(p + EXEC_EVENT.filename, p + EXEC_EVENT.filename + pathLen), base + PATH_AT)
    v.i32[w0 + W.PATH_LEN] = pathLen
    // argv, NUL-separated in the record → the command line, space-separated
    const cmdLen = Math.min(argsLen, CMD_BYTES)
    const cmd = base + CMD_AT
    v.u8.set(buf.subarray(p + EXEC_EVENT.args, p + EXEC_EVENT.args + cmdLen), cmd)
    let n = cmdLen
    while (n > 0 && v.u8[cmd + n - 1] === 0) n--
    for (let i = 0; i < n; i++) if (v.u8[cmd + i] === 0) v.u8[cmd + i] = 0x20
    if (argc === 0 || n === 0) {
      // argv lost (the exec began before attach): the path is the best command line there is
      v.u8.copyWithin(cmd, base + PATH_AT, base + PATH_AT + pathLen)
      n = pathLen
    }
    v.i32[w0 + W.CMD_LEN] = n
    const truncated = (kflags & 0x03) !== 0 || argsLen > CMD_BYTES
    v.i32[w0 + W.FLAGS] = PROC_FLAG.EXECED | (truncated ? PROC_FLAG.CMD_TRUNCATED : 0) | ((kflags & 0x10) !== 0 ? PROC_FLAG.PATH_TRUNCATED : 0)
    this.#end(s)
  }

  #exit (tgid: number): void {
    const v = this.#v
    const s = this.#find(tgid)
    if (s < 0) return
    const w0 = v.word(s, 0)
    this.#begin(s)
    v.i32[w0 + W.FLAGS] |= PROC_FLAG.EXITED
    v.f64[(s * SLOT_BYTES + F64_AT) / 8 + 1] = this.#nowMs
    this.#end(s)
  }

  /** Seed one running process (from /proc). */
  seed (pid: number, ppid: number, uid: number, startBootMs: number, path: string, cmdLine: string, cwd = ''): void {
    const v = this.#v
    const s = this.#slotFor(pid)
    if (s < 0) return
    const w0 = v.word(s, 0)
    const base = s * SLOT_BYTES
    const pathB = Buffer.from(path)
    const cmdB = Buffer.from(cmdLine)
    this.#begin(s)
    v.i32[w0 + W.PID] = pid
    v.i32[w0 + W.PPID] = ppid
    v.i32[w0 + W.UID] = uid
    v.f64[(base + F64_AT) / 8] = startBootMs
    v.f64[(base + F64_AT) / 8 + 1] = 0
    const pl = Math.min(pathB.length, PATH_BYTES)
    const cl = Math.min(cmdB.length, CMD_BYTES)
    v.u8.set(pathB.subarray(0, pl), base + PATH_AT)
    v.u8.set(cmdB.subarray(0, cl), base + CMD_AT)
    v.i32[w0 + W.PATH_LEN] = pl
    v.i32[w0 + W.CMD_LEN] = cl
    v.i32[w0 + W.CWD_LEN] = 0
    if (cwd !== '') this.#setCwd(s, cwd)
    v.i32[w0 + W.FLAGS] = PROC_FLAG.SEEDED | (cmdB.length > CMD_BYTES ? PROC_FLAG.CMD_TRUNCATED : 0) | (pathB.length > PATH_BYTES ? PROC_FLAG.PATH_TRUNCATED : 0)
    this.#end(s)
  }

  /** Every process /proc lists now; returns how many were seeded. */
  seedFromProc (procDir = '/proc'): number {
    let n = 0
    for (const name of readdirSync(procDir)) {
      const pid = Number(name)
      if (!Number.isInteger(pid) || pid <= 0) continue
      const st = statOf(pid, procDir)
      if (st === undefined) continue
      let path = ''
      let cmd = ''
      try { path = readlinkSync(`${procDir}/${pid}/exe`) } catch {}
      try { cmd = readFileSync(`${procDir}/${pid}/cmdline`).toString('utf8').replace(/\0+$/, '').replaceAll('\0', ' ') } catch {}
      // kernel threads have no exe and no argv: their comm stands for both
      if (cmd === '') cmd = `[${st.comm}]`
      this.seed(pid, st.ppid, st.uid, st.startTicks * CLK_TCK_MS, path, cmd, cwdOf(pid, procDir) ?? '')
      n++
    }
    return n
  }

  /** Every record emitted before `bootNs` is applied: wake the decoders waiting for it. */
  markApplied (bootNs: number): void {
    const v = this.#v
    if (bootNs <= v.head64[WATERMARK]) return
    v.head64[WATERMARK] = bootNs
    Atomics.add(v.head32, GENERATION, 1)
    Atomics.notify(v.head32, GENERATION)
  }

  /** Free the slots of processes that exited more than keepMs before nowBootMs. */
  sweep (nowBootMs: number): void {
    this.#sweptAt = nowBootMs
    const v = this.#v
    for (let s = 0; s < v.shape.slots; s++) {
      if (v.pidAt(s) <= 0) continue
      const w0 = v.word(s, 0)
      if ((v.i32[w0 + W.FLAGS] & PROC_FLAG.EXITED) === 0) continue
      if (nowBootMs - v.f64[(s * SLOT_BYTES + F64_AT) / 8 + 1] < this.#keepMs) continue
      this.#free(s)
      v.counters[COUNTER.EVICTED_EXITED]++
    }
  }

  #free (s: number): void {
    const v = this.#v
    this.#begin(s)
    Atomics.store(v.i32, v.word(s, W.PID), -1)
    this.#end(s)
    v.counters[COUNTER.LIVE]--
  }

  #find (pid: number): number {
    const v = this.#v
    let s = home(pid, v.mask)
    for (let i = 0; i < PROBE; i++, s = (s + 1) & v.mask) {
      const at = v.pidAt(s)
      if (at === 0) return -1
      if (at === pid) return s
    }
    return -1
  }

  /**
   * The slot pid lives in, or a free one in its probe window; when the window
   * is full, the process there that exited first (else started first) gives
   * way, counted as an overflow. The slot's pid is written by the caller.
   */
  #slotFor (pid: number): number {
    const found = this.#find(pid)
    if (found >= 0) return found
    const v = this.#v
    let s = home(pid, v.mask)
    let victim = -1
    let victimKey = Infinity
    for (let i = 0; i < PROBE; i++, s = (s + 1) & v.mask) {
      const at = v.pidAt(s)
      if (at <= 0) {
        v.counters[COUNTER.LIVE]++
        v.counters[COUNTER.INSERTED]++
        return s
      }
      const base = (s * SLOT_BYTES + F64_AT) / 8
      const exited = v.f64[base + 1]
      // exited processes first, in exit order; then the oldest running
      const key = exited > 0 ? exited - 1e15 : v.f64[base]
      if (key < victimKey) { victimKey = key; victim = s }
    }
    v.counters[COUNTER.OVERFLOW]++
    v.counters[COUNTER.INSERTED]++
    return victim
  }

  #begin (s: number): void { Atomics.add(this.#v.i32, this.#v.word(s, W.SEQ), 1) }
  #end (s: number): void { Atomics.add(this.#v.i32, this.#v.word(s, W.SEQ), 1) }
}

function cwdOf (pid: number, procDir = '/proc'): string | undefined {
  // most short-lived processes are gone by now: asking first is far cheaper than the exception
  const link = `${procDir}/${pid}/cwd`
  if (!existsSync(`${procDir}/${pid}`)) return undefined
  try { return readlinkSync(link) } catch { return undefined }
}

interface Stat { ppid: number, uid: number, startTicks: number, comm: string }

/** /proc/<pid>/stat's ppid, start time and comm, and the owner's uid; undefined once it is gone. */
function statOf (pid: number, procDir = '/proc'): Stat | undefined {
  try {
    const text = readFileSync(`${procDir}/${pid}/stat`, 'latin1')
    // comm may hold spaces and parentheses: the fields follow the last ')'
    const close = text.lastIndexOf(')')
    const comm = text.slice(text.indexOf('(') + 1, close)
    const f = text.slice(close + 2).split(' ')
    const status = readFileSync(`${procDir}/${pid}/status`, 'latin1')
    const uid = /\nUid:\s+(\d+)/.exec(status)
    return { ppid: Number(f[1]), uid: uid !== null ? Number(uid[1]) : 0, startTicks: Number(f[19]), comm }
  } catch {
    return undefined
  }
}
