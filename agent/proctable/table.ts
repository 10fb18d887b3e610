// The process table every decoder reads: one SharedArrayBuffer of
// fixed-size slots, open addressing by pid, one writer (the process ring's
// consumer thread, writer.ts) and lock-free readers (seqlock per slot).
//
// Why shared memory and not a table per decoder: piscina gives a task to any
// free worker, so the exec of a parent and the records of its child are
// decoded by different workers, out of order. The consumer thread of the
// process ring sees every exec, fork and exit in kernel order and applies
// them to the table before it hands the slab on, so a decoder that
// normalises an exec finds the parent already there. Records of other rings
// (a connect, a file write) race the process ring by up to its linger; a
// process they name that is not in the table yet is written without
// ancestry, never with a wrong one. To make that rare, the writer publishes
// a watermark (every record emitted before this CLOCK_BOOTTIME instant is
// applied) and a decoder of another ring waits, a bounded while, until the
// watermark passes its slab's last record (waitApplied).
//
// Slot i: [SLOT_WORDS Int32 words][f64 start][f64 exit][path][cmd][cwd]
// word 0 is the seqlock (odd while the writer is inside), word 1 the pid
// (0 empty, -1 deleted: lookups probe past it).

export const PATH_BYTES = 256
export const CMD_BYTES = 512
export const CWD_BYTES = 256
const SLOT_WORDS = 8
const W = { SEQ: 0, PID: 1, PPID: 2, UID: 3, FLAGS: 4, PATH_LEN: 5, CMD_LEN: 6, CWD_LEN: 7 } as const
const F64_AT = SLOT_WORDS * 4
const PATH_AT = F64_AT + 16
const CMD_AT = PATH_AT + PATH_BYTES
const CWD_AT = CMD_AT + CMD_BYTES
export const SLOT_BYTES = CWD_AT + CWD_BYTES
/** slots probed from a pid's home before the table counts an overflow */
export const PROBE = 32
const HEAD_BYTES = 64

/** ProcInfo.flags */
export const PROC_FLAG = { EXITED: 1, CMD_TRUNCATED: 2, PATH_TRUNCATED: 4, EXECED: 8, SEEDED: 16 } as const

/** Counters at the start of the buffer (Uint32, written by the writer only). */
export const COUNTER = { LIVE: 0, INSERTED: 1, EVICTED_EXITED: 2, OVERFLOW: 3, EXECS: 4, FORKS: 5, EXITS: 6, MISSES: 7 } as const
export type ProcTableCounters = { [K in Lowercase<keyof typeof COUNTER>]: number }

export interface ProcTableShape {
  data: SharedArrayBuffer
  slots: number
}

/** One process as a reader sees it. */
export interface ProcInfo {
  pid: number
  ppid: number
  uid: number
  /** PROC_FLAG bits */
  flags: number
  /** CLOCK_BOOTTIME milliseconds */
  startBootMs: number
  /** 0 while it runs */
  exitBootMs: number
  path: string
  cmdLine: string
  /** '' when unknown */
  cwd: string
}

export function createProcTable (slots = 8192): ProcTableShape {
  if ((slots & (slots - 1)) !== 0 || slots < PROBE) throw new Error(`process table slots must be a power of two >= ${PROBE}, got ${slots}`)
  return { data: new SharedArrayBuffer(HEAD_BYTES + slots * SLOT_BYTES), slots }
}

export const home = (pid: number, mask: number): number => Math.imul(pid, 0x9e3779b1) >>> 0 & mask

/** The views both sides use. */
export class TableViews {
  readonly shape: ProcTableShape
  readonly mask: number
  readonly counters: Uint32Array
  readonly i32: Int32Array
  readonly f64: Float64Array
  readonly u8: Uint8Array
  readonly buf: Buffer

  constructor (shape: ProcTableShape) {
    this.shape = shape
    this.mask = shape.slots - 1
    this.counters = new Uint32Array(shape.data, 0, HEAD_BYTES / 4)
    this.i32 = new Int32Array(shape.data, HEAD_BYTES)
    this.f64 = new Float64Array(shape.data, HEAD_BYTES)
    this.u8 = new Uint8Array(shape.data, HEAD_BYTES)
    this.buf = Buffer.from(shape.data, HEAD_BYTES)
    this.head64 = new Float64Array(shape.data, 0, HEAD_BYTES / 8)
    this.head32 = new Int32Array(shape.data, 0, HEAD_BYTES / 4)
  }

  readonly head64: Float64Array
  readonly head32: Int32Array

  /** index of slot s's Int32 word w */
  word (s: number, w: number): number { return s * (SLOT_BYTES / 4) + w }
  pidAt (s: number): number { return Atomics.load(this.i32, this.word(s, W.PID)) }
}

export { W as SLOT_WORD, F64_AT, PATH_AT, CMD_AT, CWD_AT }

/** head64[WATERMARK]: boot ns before which every record is applied; head32[GENERATION] moves with it (Atomics.wait) */
export const WATERMARK = 6
export const GENERATION = 15

/** A reader: any thread. */
export class ProcTableReader {
  readonly #v: TableViews

  constructor (shape: ProcTableShape) {
    this.#v = new TableViews(shape)
  }

  /**
   * Wait until every process record emitted before `bootNs` is applied, at
   * most `maxMs` (blocks the thread: decoders only). False if it timed out.
   */
  waitApplied (bootNs: number, maxMs: number): boolean {
    const v = this.#v
    const end = performance.now() + maxMs
    for (;;) {
      const gen = Atomics.load(v.head32, GENERATION)
      if (v.head64[WATERMARK] >= bootNs) return true
      const left = end - performance.now()
      if (left <= 0) return false
      Atomics.wait(v.head32, GENERATION, gen, left)
    }
  }

  /** Fill `out` with process `pid`; false if the table does not hold it. */
  lookup (pid: number, out: ProcInfo): boolean {
    if (pid <= 0) return false
    const v = this.#v
    let s = home(pid, v.mask)
    for (let i = 0; i < PROBE; i++, s = (s + 1) & v.mask) {
      const at = v.pidAt(s)
      if (at === 0) return false
      if (at !== pid) continue
      if (this.#read(s, pid, out)) return true
      // the writer reused the slot while we read it: the pid moved or left
      return this.#retry(pid, out)
    }
    return false
  }

  #retry (pid: number, out: ProcInfo): boolean {
    const v = this.#v
    for (let attempt = 0; attempt < 4; attempt++) {
      let s = home(pid, v.mask)
      for (let i = 0; i < PROBE; i++, s = (s + 1) & v.mask) {
        const at = v.pidAt(s)
        if (at === 0) break
        if (at === pid && this.#read(s, pid, out)) return true
      }
    }
    return false
  }

  /** A consistent copy of slot s if it still holds pid (seqlock). */
  #read (s: number, pid: number, out: ProcInfo): boolean {
    const v = this.#v
    const seqAt = v.word(s, W.SEQ)
    for (let spin = 0; spin < 64; spin++) {
      const seq = Atomics.load(v.i32, seqAt)
      if ((seq & 1) === 1) continue
      const w0 = v.word(s, 0)
      if (v.i32[w0 + W.PID] !== pid) return false
      out.pid = pid
      out.ppid = v.i32[w0 + W.PPID]
      out.uid = v.i32[w0 + W.UID] >>> 0
      out.flags = v.i32[w0 + W.FLAGS]
      const base = s * SLOT_BYTES
      out.startBootMs = v.f64[(base + F64_AT) / 8]
      out.exitBootMs = v.f64[(base + F64_AT) / 8 + 1]
      const pathLen = Math.min(PATH_BYTES, v.i32[w0 + W.PATH_LEN])
      const cmdLen = Math.min(CMD_BYTES, v.i32[w0 + W.CMD_LEN])
      out.path = v.buf.toString('utf8', base + PATH_AT, base + PATH_AT + pathLen)
      out.cmdLine = v.buf.toString('utf8', base + CMD_AT, base + CMD_AT + cmdLen)
      const cwdLen = Math.min(CWD_BYTES, v.i32[w0 + W.CWD_LEN])
      out.cwd = cwdLen > 0 ? v.buf.toString('utf8', base + CWD_AT, base + CWD_AT + cwdLen) : ''
      if (Atomics.load(v.i32, seqAt) === seq) return true
    }
    return false
  }

  counters (): ProcTableCounters {
    const c = this.#v.counters
    return {
      live: c[COUNTER.LIVE], inserted: c[COUNTER.INSERTED], evicted_exited: c[COUNTER.EVICTED_EXITED], overflow: c[COUNTER.OVERFLOW],
      execs: c[COUNTER.EXECS], forks: c[COUNTER.FORKS], exits: c[COUNTER.EXITS], misses: c[COUNTER.MISSES],
    }
  }
}

export function emptyProcInfo (): ProcInfo {
  return { pid: 0, ppid: 0, uid: 0, flags: 0, startBootMs: 0, exitBootMs: 0, path: '', cmdLine: '', cwd: '' }
}

/**
 * The ancestors of `pid`, nearest first, at most `depth` of them (each read
 * on its own: a chain is as consistent as the table at the time).
 */
export function ancestry (r: ProcTableReader, self: ProcInfo, depth: number, pool: ProcInfo[]): ProcInfo[] {
  const out: ProcInfo[] = []
  let ppid = self.ppid
  const seen = new Set<number>([self.pid])
  while (out.length < depth && ppid > 0 && !seen.has(ppid)) {
    const p = pool[out.length] ?? (pool[out.length] = emptyProcInfo())
    if (!r.lookup(ppid, p)) break
    seen.add(ppid)
    out.push(p)
    ppid = p.ppid
  }
  return out
}
