import { closeSync, fdatasync, fdatasyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, unlink, writeSync, writevSync } from 'node:fs'
import { join } from 'node:path'
import { PicketError } from '../../shared/errors.js'
import type { Logger } from '../../shared/logger.js'
import { crc32 } from '../crc32.js'
import { FRAME_HEADER, frameHeader, lastSeqOf, readFrame, readWatermark, scanSegment, SEG_HEADER, segmentHeader, segName, writeWatermark, type Segment } from './spool-format.js'
import { spoolInstance } from './spool-instance.js'
import type { AppendExtras, Eviction, SpooledBatch, SpoolOptions, SpoolStats } from './spool-types.js'
import { lockSpool, unlockSpool } from './spool-lock.js'

// The disk spool: every batch is written here, with its sequence number,
// before it is sent, and stays until the collector acks it. Its files:
// spool-format.ts; one agent per folder: spool-lock.ts; the instance id that
// names its seq stream: spool-instance.ts.
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
// answers DUPLICATE (it de-duplicates by host, instance and seq) and nothing
// is counted twice.
//
// The spool is bounded: past maxBytes the oldest segment is deleted, acked
// or not, and its unacked records are reported as evicted (drops).

export type { AppendExtras, Eviction, SpooledBatch, SpoolOptions, SpoolStats } from './spool-types.js'

export class Spool {
  readonly dir: string
  readonly #maxBytes: number
  readonly #segmentBytes: number
  readonly #cacheMax: number
  readonly #log: Logger
  readonly #segments: Segment[] = []
  #nextSeq = 1
  #instance = ''
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
    lockSpool(opts.dir, opts.log)
    try {
      s.#recover()
    } catch (err) {
      unlockSpool(opts.dir)
      for (const seg of s.#segments) closeSync(seg.fd)
      throw err
    }
    return s
  }

  #recover (): void {
    this.#acked = this.#persistedAcked = readWatermark(this.dir, this.#log)
    const names = readdirSync(this.dir).filter(n => /^seg-\d{20}\.pks$/.test(n)).sort()
    for (const name of names) {
      const { seg, truncatedBytes } = scanSegment(join(this.dir, name), Number(name.slice(4, 24)), this.#log)
      this.#truncatedBytes += truncatedBytes
      if (seg !== undefined) { this.#segments.push(seg); this.#bytes += seg.size }
    }
    // segments wholly done are deleted; the last one stays (it carries the next seq)
    while (this.#segments.length > 1 && lastSeqOf(this.#segments[0]) <= this.#acked) this.#dropSegment(this.#segments.shift() as Segment)
    const last = this.#segments.at(-1)
    this.#nextSeq = Math.max(this.#acked + 1, last === undefined ? 1 : lastSeqOf(last) + 1)
    this.#instance = spoolInstance(this.dir, this.#nextSeq === 1, this.#log)
    let replay = 0
    for (const seg of this.#segments) {
      for (let i = 0; i < seg.offsets.length; i++) {
        if (seg.firstSeq + i > this.#acked) { this.#pendingBatches++; this.#pendingRecords += seg.counts[i]; replay++ }
      }
    }
    // a segment of the older format is read, never appended to
    if (last === undefined || last.version !== 2 || last.size >= this.#segmentBytes || lastSeqOf(last) + 1 !== this.#nextSeq) this.#roll()
    if (replay > 0) this.#log.info({ dir: this.dir, batches: replay, records: this.#pendingRecords, fromSeq: this.firstPending() }, 'spool holds unacked batches; they will be sent first')
  }

  // -- write --------------------------------------------------------------

  #roll (): void {
    const prev = this.#segments.at(-1)
    if (prev !== undefined) fdatasync(prev.fd, () => {})
    const path = join(this.dir, segName(this.#nextSeq))
    const fd = openSync(path, 'a+')
    writeSync(fd, segmentHeader(this.#nextSeq))
    this.#segments.push({ version: 2, firstSeq: this.#nextSeq, path, fd, size: SEG_HEADER, offsets: [], lengths: [], counts: [] })
    this.#bytes += SEG_HEADER
  }

  /** Write a batch; returns it with its seq. It is on disk when this returns. */
  append (records: Uint8Array, count: number, createdMs = Date.now(), extra: AppendExtras = {}): SpooledBatch {
    const { context, release } = extra
    if (this.#closed) throw new PicketError('PICKET_ERR_SPOOL', 'append to a closed spool')
    let seg = this.#segments[this.#segments.length - 1]
    const ctxLen = context?.length ?? 0
    const length = ctxLen + records.length
    const frameLen = FRAME_HEADER + length
    if (seg.offsets.length > 0 && seg.size + frameLen > this.#segmentBytes) {
      this.#roll()
      seg = this.#segments[this.#segments.length - 1]
    }
    const seq = this.#nextSeq
    const hdr = frameHeader(seq, length, count, createdMs, extra.crc ?? crc32(records, context === undefined ? 0 : crc32(context)), ctxLen)
    let written: number
    try {
      written = writevSync(seg.fd, context === undefined || ctxLen === 0 ? [hdr, records] : [hdr, context, records])
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
    seg.lengths.push(length)
    seg.counts.push(count)
    seg.size += frameLen
    this.#bytes += frameLen
    this.#nextSeq++
    this.#pendingBatches++
    this.#pendingRecords += count
    this.#dirty = true
    const b: SpooledBatch = { seq, count, createdMs, records }
    if (context !== undefined && ctxLen > 0) b.context = context
    if (release !== undefined) b.release = release
    this.#cache.set(seq, b)
    this.#cacheBytes += length
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
      this.#cacheBytes -= c.records.length + (c.context?.length ?? 0)
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
    const b = readFrame(seg, seq)
    if (b === undefined) this.#log.error({ path: seg.path, seq }, 'spooled batch fails its checksum on read; it cannot be sent')
    return b
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
    writeWatermark(this.dir, this.#acked)
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

  get nextSeq (): number { return this.#nextSeq }
  get ackedThrough (): number { return this.#acked }
  get instance (): string { return this.#instance }
  get pendingBatches (): number { return this.#pendingBatches }

  stats (): SpoolStats {
    return {
      dir: this.dir,
      bytes: this.#bytes,
      segments: this.#segments.length,
      pendingBatches: this.#pendingBatches,
      pendingRecords: this.#pendingRecords,
      nextSeq: this.#nextSeq,
      ackedThrough: this.#acked,
      instance: this.#instance,
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
    unlockSpool(this.dir)
  }
}
