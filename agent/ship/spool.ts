import { closeSync, existsSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, unlink, unlinkSync, writeFileSync, writeSync, writevSync } from 'node:fs'
import { join } from 'node:path'
import { PicketError } from '../../shared/errors.js'
import type { Logger } from '../../shared/logger.js'
import { crc32 } from '../crc32.js'

// The disk spool: every batch is written here, with its sequence number,
// before it is sent, and stays until the collector acks it.
//
// Layout of a spool folder (one per host id):
//   seg-<first seq, 20 digits>.pks   append-only segments, oldest first
//   acked                            the ack watermark: every seq <= it is done
//   lock                             pid of the agent that owns the folder
//
// A segment is a 16-byte header, "PKSPSEG1" then its first seq (u64 LE),
// followed by frames, one per batch, back to back:
//   0  u32 magic "PKSF"        16  u64 seq
//   4  u32 payload length      24  u64 created (wall clock ms)
//   8  u32 record count        32  payload: the batch's msgpack records
//  12  u32 crc32 of the payload, then bytes [0,12), then [16,32)
//
// Writes go straight to the file (one writev per batch, no user-space
// buffer), so a batch survives SIGKILL as soon as append() returns; fdatasync
// runs once a second and at roll and close, for power loss. On open, every
// frame is checked; the first bad one (a torn write) ends its segment: the
// file is truncated there and the loss is logged.
//
// Acks arrive in any order. The watermark moves over the contiguous acked
// prefix and is written (atomically, by rename) once a second and at close;
// a segment wholly below it is deleted. After a crash the agent may resend a
// few batches that were acked after the last watermark write: the collector
// answers DUPLICATE (it de-duplicates by host and seq) and nothing is counted
// twice.
//
// The spool is bounded: past maxBytes the oldest segment is deleted, acked
// or not, and its unacked records are reported as evicted (drops).

const SEG_MAGIC = Buffer.from('PKSPSEG1', 'latin1')
const SEG_HEADER = 16
const FRAME_MAGIC = 0x46534b50
const FRAME_HEADER = 32
const ACK_MAGIC = 0x41534b50
const MAX_PAYLOAD = 256 * 1024 * 1024

export interface SpoolOptions {
  dir: string
  /** bound of the spool, all segments together */
  maxBytes: number
  /** roll to a new segment past this size */
  segmentBytes: number
  log: Logger
  /** recently appended batches kept in memory for sending (default 32 MiB) */
  cacheBytes?: number
}

export interface SpooledBatch {
  seq: number
  count: number
  createdMs: number
  records: Uint8Array
  /** called once the spool holds no reference to `records` any more */
  release?: () => void
}

export interface Eviction {
  /** seqs of the deleted segment */
  fromSeq: number
  toSeq: number
  /** unacked batches of the segment, their record counts, and the total */
  seqs: number[]
  counts: number[]
  records: number
  bytes: number
}

export interface SpoolStats {
  dir: string
  bytes: number
  segments: number
  pendingBatches: number
  pendingRecords: number
  nextSeq: number
  ackedThrough: number
  cacheBytes: number
  evictedBatches: number
  evictedRecords: number
  /** bytes cut from segment tails that failed their checks at open */
  truncatedBytes: number
}

interface Segment {
  firstSeq: number
  path: string
  fd: number
  size: number
  /** frame offset, payload length and record count, by seq - firstSeq */
  offsets: number[]
  lengths: number[]
  counts: number[]
}

function lastSeqOf (s: Segment): number {
  return s.firstSeq + s.offsets.length - 1
}

function segName (firstSeq: number): string {
  return `seg-${String(firstSeq).padStart(20, '0')}.pks`
}

// the payload comes first so a decoder thread can checksum it off the main thread
function frameCrc (hdr: Uint8Array, payloadCrc: number): number {
  return crc32(hdr.subarray(16, FRAME_HEADER), crc32(hdr.subarray(0, 12), payloadCrc))
}

function pidAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

const openDirs = new Set<string>()

export class Spool {
  readonly dir: string
  readonly #maxBytes: number
  readonly #segmentBytes: number
  readonly #cacheMax: number
  readonly #log: Logger
  readonly #segments: Segment[] = []
  #nextSeq = 1
  /** every seq <= #acked is done (acked, refused or evicted) */
  #acked = 0
  #persistedAcked = 0
  /** done seqs above the watermark */
  readonly #ackedSet = new Set<number>()
  readonly #cache = new Map<number, SpooledBatch>()
  #cacheBytes = 0
  #bytes = 0
  #pendingBatches = 0
  #pendingRecords = 0
  #evictedBatches = 0
  #evictedRecords = 0
  #truncatedBytes = 0
  #syncing = false
  #dirty = false
  #closed = false
  /** called after a segment is evicted */
  onEvict: ((e: Eviction) => void) | undefined

  private constructor (opts: SpoolOptions) {
    this.dir = opts.dir
    this.#maxBytes = opts.maxBytes
    this.#segmentBytes = opts.segmentBytes
    this.#cacheMax = opts.cacheBytes ?? 32 * 1024 * 1024
    this.#log = opts.log
  }

  static open (opts: SpoolOptions): Spool {
    const s = new Spool(opts)
    try {
      mkdirSync(opts.dir, { recursive: true })
    } catch (err) {
      throw new PicketError('PICKET_ERR_SPOOL', `cannot create the spool folder ${opts.dir}: ${(err as Error).message}; check --data`)
    }
    s.#lock()
    try {
      s.#recover()
    } catch (err) {
      s.#unlock()
      for (const seg of s.#segments) closeSync(seg.fd)
      throw err
    }
    return s
  }

  // -- open ---------------------------------------------------------------

  #lock (): void {
    if (openDirs.has(this.dir)) throw new PicketError('PICKET_ERR_SPOOL', `spool ${this.dir} is already open in this process`)
    const path = join(this.dir, 'lock')
    for (let tries = 0; tries < 2; tries++) {
      try {
        const fd = openSync(path, 'wx')
        writeSync(fd, String(process.pid))
        closeSync(fd)
        openDirs.add(this.dir)
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new PicketError('PICKET_ERR_SPOOL', `cannot lock the spool ${this.dir}: ${(err as Error).message}`)
      }
      const pid = Number(readFileSync(path, 'utf8').trim())
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
        throw new PicketError('PICKET_ERR_SPOOL', `spool ${this.dir} is in use by process ${pid}: stop that agent or give this one another --data folder`)
      }
      this.#log.warn({ dir: this.dir, pid }, 'spool lock left by a process that is gone; taking it over')
      unlinkSync(path)
    }
    throw new PicketError('PICKET_ERR_SPOOL', `cannot lock the spool ${this.dir}`)
  }

  #unlock (): void {
    openDirs.delete(this.dir)
    try { unlinkSync(join(this.dir, 'lock')) } catch {}
  }

  #readAcked (): number {
    const path = join(this.dir, 'acked')
    if (!existsSync(path)) return 0
    const b = readFileSync(path)
    if (b.length !== 16 || b.readUInt32LE(0) !== ACK_MAGIC || crc32(b.subarray(8)) !== b.readUInt32LE(4)) {
      this.#log.warn({ path }, 'spool ack watermark is damaged; replaying every segment (the collector drops duplicates)')
      return 0
    }
    return Number(b.readBigUInt64LE(8))
  }

  #recover (): void {
    this.#acked = this.#persistedAcked = this.#readAcked()
    const names = readdirSync(this.dir).filter(n => /^seg-\d{20}\.pks$/.test(n)).sort()
    for (const name of names) {
      const seg = this.#scan(join(this.dir, name), Number(name.slice(4, 24)))
      if (seg !== undefined) { this.#segments.push(seg); this.#bytes += seg.size }
    }
    // segments wholly done are deleted; the last one stays (it carries the next seq)
    while (this.#segments.length > 1 && lastSeqOf(this.#segments[0]) <= this.#acked) this.#dropSegment(this.#segments.shift() as Segment)
    const last = this.#segments.at(-1)
    this.#nextSeq = Math.max(this.#acked + 1, last === undefined ? 1 : lastSeqOf(last) + 1)
    let replay = 0
    for (const seg of this.#segments) {
      for (let i = 0; i < seg.offsets.length; i++) {
        if (seg.firstSeq + i > this.#acked) { this.#pendingBatches++; this.#pendingRecords += seg.counts[i]; replay++ }
      }
    }
    if (last === undefined || last.size >= this.#segmentBytes || lastSeqOf(last) + 1 !== this.#nextSeq) this.#roll()
    if (replay > 0) this.#log.info({ dir: this.dir, batches: replay, records: this.#pendingRecords, fromSeq: this.firstPending() }, 'spool holds unacked batches; they will be sent first')
  }

  /** Read and check one segment; truncates a bad tail. */
  #scan (path: string, nameSeq: number): Segment | undefined {
    const fd = openSync(path, 'a+')
    const size = fstatSync(fd).size
    const seg: Segment = { firstSeq: nameSeq, path, fd, size: 0, offsets: [], lengths: [], counts: [] }
    const hdr = Buffer.alloc(SEG_HEADER)
    if (size < SEG_HEADER || readSync(fd, hdr, 0, SEG_HEADER, 0) !== SEG_HEADER || !hdr.subarray(0, 8).equals(SEG_MAGIC) || Number(hdr.readBigUInt64LE(8)) !== nameSeq) {
      // a segment whose header never made it to disk holds nothing
      if (size > 0) this.#log.error({ path, bytes: size }, 'spool segment has a bad header; discarding it')
      this.#truncatedBytes += size
      closeSync(fd)
      unlinkSync(path)
      return undefined
    }
    let p = SEG_HEADER
    const fh = Buffer.alloc(FRAME_HEADER)
    let problem: string | undefined
    while (p < size) {
      if (p + FRAME_HEADER > size) { problem = 'torn frame header'; break }
      readSync(fd, fh, 0, FRAME_HEADER, p)
      const len = fh.readUInt32LE(4)
      const expectSeq = nameSeq + seg.offsets.length
      if (fh.readUInt32LE(0) !== FRAME_MAGIC || len > MAX_PAYLOAD) { problem = 'bad frame magic'; break }
      if (Number(fh.readBigUInt64LE(16)) !== expectSeq) { problem = `frame seq ${Number(fh.readBigUInt64LE(16))} where ${expectSeq} was expected`; break }
      if (p + FRAME_HEADER + len > size) { problem = 'torn frame payload'; break }
      const payload = Buffer.allocUnsafe(len)
      readSync(fd, payload, 0, len, p + FRAME_HEADER)
      if (frameCrc(fh, crc32(payload)) !== fh.readUInt32LE(12)) { problem = 'checksum mismatch'; break }
      seg.offsets.push(p)
      seg.lengths.push(len)
      seg.counts.push(fh.readUInt32LE(8))
      p += FRAME_HEADER + len
    }
    if (problem !== undefined) {
      this.#log.warn({ path, offset: p, bytes: size - p, problem, framesKept: seg.offsets.length }, 'spool segment ends in a damaged frame (torn write?); truncating it there')
      ftruncateSync(fd, p)
      this.#truncatedBytes += size - p
    }
    seg.size = p
    return seg
  }

  // -- write --------------------------------------------------------------

  #roll (): void {
    const prev = this.#segments.at(-1)
    if (prev !== undefined) fdatasync(prev.fd, () => {})
    const path = join(this.dir, segName(this.#nextSeq))
    const fd = openSync(path, 'a+')
    const hdr = Buffer.alloc(SEG_HEADER)
    SEG_MAGIC.copy(hdr, 0)
    hdr.writeBigUInt64LE(BigInt(this.#nextSeq), 8)
    writeSync(fd, hdr)
    this.#segments.push({ firstSeq: this.#nextSeq, path, fd, size: SEG_HEADER, offsets: [], lengths: [], counts: [] })
    this.#bytes += SEG_HEADER
  }

  /**
   * Write a batch; returns it with its seq. It is on disk when this returns.
   * `recordsCrc`: crc32 of `records` when the caller has it already.
   */
  append (records: Uint8Array, count: number, createdMs = Date.now(), recordsCrc?: number, release?: () => void): SpooledBatch {
    if (this.#closed) throw new PicketError('PICKET_ERR_SPOOL', 'append to a closed spool')
    let seg = this.#segments[this.#segments.length - 1]
    const frameLen = FRAME_HEADER + records.length
    if (seg.offsets.length > 0 && seg.size + frameLen > this.#segmentBytes) {
      this.#roll()
      seg = this.#segments[this.#segments.length - 1]
    }
    const seq = this.#nextSeq
    const hdr = Buffer.allocUnsafe(FRAME_HEADER)
    hdr.writeUInt32LE(FRAME_MAGIC, 0)
    hdr.writeUInt32LE(records.length, 4)
    hdr.writeUInt32LE(count, 8)
    hdr.writeBigUInt64LE(BigInt(seq), 16)
    hdr.writeBigUInt64LE(BigInt(createdMs), 24)
    hdr.writeUInt32LE(frameCrc(hdr, recordsCrc ?? crc32(records)), 12)
    let written: number
    try {
      written = writevSync(seg.fd, [hdr, records])
    } catch (err) {
      this.#undoPartial(seg)
      release?.()
      throw new PicketError('PICKET_ERR_SPOOL', `cannot write to the spool ${seg.path}: ${(err as Error).message}`)
    }
    if (written !== frameLen) {
      this.#undoPartial(seg)
      release?.()
      throw new PicketError('PICKET_ERR_SPOOL', `short write to the spool ${seg.path} (${written} of ${frameLen} bytes): is the disk full?`)
    }
    seg.offsets.push(seg.size)
    seg.lengths.push(records.length)
    seg.counts.push(count)
    seg.size += frameLen
    this.#bytes += frameLen
    this.#nextSeq++
    this.#pendingBatches++
    this.#pendingRecords += count
    this.#dirty = true
    const b: SpooledBatch = { seq, count, createdMs, records }
    if (release !== undefined) b.release = release
    this.#cache.set(seq, b)
    this.#cacheBytes += records.length
    while (this.#cacheBytes > this.#cacheMax && this.#cache.size > 0) {
      this.#uncache(this.#cache.keys().next().value as number)
    }
    this.#evictIfNeeded()
    return b
  }

  #undoPartial (seg: Segment): void {
    try { ftruncateSync(seg.fd, seg.size) } catch {}
  }

  #evictIfNeeded (): void {
    while (this.#bytes > this.#maxBytes && this.#segments.length > 1) {
      const seg = this.#segments.shift() as Segment
      const last = lastSeqOf(seg)
      const seqs: number[] = []
      const counts: number[] = []
      let records = 0
      for (let i = 0; i < seg.offsets.length; i++) {
        const seq = seg.firstSeq + i
        if (seq > this.#acked && !this.#ackedSet.has(seq)) {
          seqs.push(seq)
          counts.push(seg.counts[i])
          records += seg.counts[i]
        }
        this.#uncache(seq)
      }
      this.#pendingBatches -= seqs.length
      this.#pendingRecords -= records
      this.#evictedBatches += seqs.length
      this.#evictedRecords += records
      this.#setWatermark(Math.max(this.#acked, last))
      this.#dropSegment(seg)
      if (seqs.length > 0) this.#log.warn({ fromSeq: seg.firstSeq, toSeq: last, batches: seqs.length, records, maxBytes: this.#maxBytes }, 'spool is over its bound: evicted its oldest segment with unacked batches')
      this.onEvict?.({ fromSeq: seg.firstSeq, toSeq: last, seqs, counts, records, bytes: seg.size })
    }
  }

  #dropSegment (seg: Segment): void {
    closeSync(seg.fd)
    // freeing tens of MiB of blocks takes the file system a while: not on this thread
    unlink(seg.path, err => { if (err !== null && err.code !== 'ENOENT') this.#log.warn({ path: seg.path, err: err.message }, 'cannot delete a spent spool segment') })
    this.#bytes -= seg.size
  }

  #uncache (seq: number): void {
    const c = this.#cache.get(seq)
    if (c !== undefined) {
      this.#cache.delete(seq)
      this.#cacheBytes -= c.records.length
      c.release?.()
    }
  }

  #setWatermark (w: number): void {
    if (w <= this.#acked) return
    this.#acked = w
    for (const s of this.#ackedSet) if (s <= w) this.#ackedSet.delete(s)
    while (this.#ackedSet.delete(this.#acked + 1)) this.#acked++
  }

  // -- read ---------------------------------------------------------------

  #segmentOf (seq: number): Segment | undefined {
    const segs = this.#segments
    for (let i = segs.length - 1; i >= 0; i--) {
      const s = segs[i]
      if (seq >= s.firstSeq) return seq <= lastSeqOf(s) ? s : undefined
    }
    return undefined
  }

  /** true once seq needs no sending: acked, refused, evicted, or never stored */
  isDone (seq: number): boolean {
    return seq <= this.#acked || this.#ackedSet.has(seq) || seq >= this.#nextSeq || this.#segmentOf(seq) === undefined
  }

  /** The smallest seq >= from that still waits for an ack, or nextSeq if none. */
  nextPending (from: number): number {
    let seq = Math.max(from, this.#acked + 1)
    while (seq < this.#nextSeq) {
      const seg = this.#segmentOf(seq)
      if (seg === undefined) {
        // a gap (a segment cut short at open): jump to the next segment
        const next = this.#segments.find(s => s.firstSeq > seq)
        if (next === undefined) return this.#nextSeq
        seq = next.firstSeq
        continue
      }
      if (!this.#ackedSet.has(seq)) return seq
      seq++
    }
    return this.#nextSeq
  }

  firstPending (): number {
    return this.nextPending(this.#acked + 1)
  }

  /** The batch with this seq, from memory or disk; undefined if it is done or unreadable. */
  read (seq: number): SpooledBatch | undefined {
    if (this.isDone(seq)) return undefined
    const cached = this.#cache.get(seq)
    if (cached !== undefined) return cached
    const seg = this.#segmentOf(seq) as Segment
    const i = seq - seg.firstSeq
    const len = seg.lengths[i]
    const buf = Buffer.allocUnsafe(FRAME_HEADER + len)
    const n = readSync(seg.fd, buf, 0, buf.length, seg.offsets[i])
    const payload = buf.subarray(FRAME_HEADER)
    if (n !== buf.length || buf.readUInt32LE(0) !== FRAME_MAGIC || Number(buf.readBigUInt64LE(16)) !== seq || frameCrc(buf, crc32(payload)) !== buf.readUInt32LE(12)) {
      this.#log.error({ path: seg.path, seq }, 'spooled batch fails its checksum on read; it cannot be sent')
      return undefined
    }
    return { seq, count: buf.readUInt32LE(8), createdMs: Number(buf.readBigUInt64LE(24)), records: payload }
  }

  countOf (seq: number): number {
    const seg = this.#segmentOf(seq)
    return seg === undefined ? 0 : seg.counts[seq - seg.firstSeq]
  }

  // -- acks ---------------------------------------------------------------

  /** The collector has the batch (or refused it for good): it is done. Returns false if it already was. */
  ack (seq: number): boolean {
    if (this.isDone(seq)) return false
    this.#pendingBatches--
    this.#pendingRecords -= this.countOf(seq)
    this.#uncache(seq)
    if (seq === this.#acked + 1) this.#setWatermark(seq)
    else this.#ackedSet.add(seq)
    while (this.#segments.length > 1 && lastSeqOf(this.#segments[0]) <= this.#acked) {
      this.#dropSegment(this.#segments.shift() as Segment)
    }
    return true
  }

  /** Write the ack watermark if it moved (atomically: temp file, then rename). */
  persist (): void {
    if (this.#acked === this.#persistedAcked) return
    const b = Buffer.alloc(16)
    b.writeUInt32LE(ACK_MAGIC, 0)
    b.writeBigUInt64LE(BigInt(this.#acked), 8)
    b.writeUInt32LE(crc32(b.subarray(8)), 4)
    const tmp = join(this.dir, 'acked.tmp')
    writeFileSync(tmp, b)
    renameSync(tmp, join(this.dir, 'acked'))
    this.#persistedAcked = this.#acked
  }

  /** Periodic housekeeping: the watermark, and fdatasync of the live segment (in the background). */
  tick (): void {
    if (this.#closed) return
    this.persist()
    const seg = this.#segments.at(-1)
    if (seg !== undefined && this.#dirty && !this.#syncing) {
      this.#dirty = false
      this.#syncing = true
      fdatasync(seg.fd, () => { this.#syncing = false })
    }
  }

  get nextSeq (): number {
    return this.#nextSeq
  }

  get ackedThrough (): number {
    return this.#acked
  }

  get pendingBatches (): number {
    return this.#pendingBatches
  }

  stats (): SpoolStats {
    return {
      dir: this.dir,
      bytes: this.#bytes,
      segments: this.#segments.length,
      pendingBatches: this.#pendingBatches,
      pendingRecords: this.#pendingRecords,
      nextSeq: this.#nextSeq,
      ackedThrough: this.#acked,
      cacheBytes: this.#cacheBytes,
      evictedBatches: this.#evictedBatches,
      evictedRecords: this.#evictedRecords,
      truncatedBytes: this.#truncatedBytes,
    }
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.persist()
    for (const seg of this.#segments) {
      try { fdatasyncSync(seg.fd) } catch {}
      closeSync(seg.fd)
    }
    this.#segments.length = 0
    for (const seq of [...this.#cache.keys()]) this.#uncache(seq)
    this.#unlock()
  }
}
