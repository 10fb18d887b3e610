import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../../shared/logger.js'
import { crc32 } from '../crc32.js'

// The spool's files. A spool folder (one per host id) holds:
//   seg-<first seq, 20 digits>.pks   append-only segments, oldest first
//   acked                            the ack watermark: every seq <= it is done
//   lock                             pid of the agent that owns the folder
//
// A segment is a 16-byte header, "PKSPSEG2" then its first seq (u64 LE),
// followed by frames, one per batch, back to back:
//   0  u32 magic "PKSF"        16  u64 seq
//   4  u32 payload length      24  u64 created (wall clock ms)
//   8  u32 record count        32  u32 context length
//  12  u32 crc32 of the        36  u32 0
//      payload, then bytes     40  payload: the batch's context (msgpack
//      [0,12), then [16,40)        map), then its records (msgpack array)
//
// Version 1 ("PKSPSEG1", written before the lean wire) has 32-byte frame
// headers that end at the created time, and no context: its records are
// full OCSF maps. Such segments are still read and their batches sent as
// they are (the collector takes the full form); the spool never appends to
// one, it starts a new segment.
//
// The watermark file is 16 bytes: u32 magic "PKSA", u32 crc32 of bytes
// [8,16), u64 the watermark.

export const SEG_MAGIC = Buffer.from('PKSPSEG2', 'latin1')
const SEG_MAGIC_V1 = Buffer.from('PKSPSEG1', 'latin1')
export const SEG_HEADER = 16
export const FRAME_MAGIC = 0x46534b50
/** the frame header this spool writes (version 2) */
export const FRAME_HEADER = 40
const FRAME_HEADER_V1 = 32
const ACK_MAGIC = 0x41534b50
const MAX_PAYLOAD = 256 * 1024 * 1024

export interface Segment {
  /** the format it is written in: 1 (read only) or 2 */
  version: 1 | 2
  firstSeq: number
  path: string
  fd: number
  size: number
  /** frame offset, payload length and record count, by seq - firstSeq */
  offsets: number[]
  lengths: number[]
  counts: number[]
}

export function lastSeqOf (s: Segment): number {
  return s.firstSeq + s.offsets.length - 1
}

export function segName (firstSeq: number): string {
  return `seg-${String(firstSeq).padStart(20, '0')}.pks`
}

/** A segment's header: the magic and its first seq. */
export function segmentHeader (firstSeq: number): Buffer {
  const hdr = Buffer.alloc(SEG_HEADER)
  SEG_MAGIC.copy(hdr, 0)
  hdr.writeBigUInt64LE(BigInt(firstSeq), 8)
  return hdr
}

export function frameHeaderBytes (version: 1 | 2): number {
  return version === 1 ? FRAME_HEADER_V1 : FRAME_HEADER
}

// the payload comes first so a decoder thread can checksum it off the main thread
function frameCrc (hdr: Uint8Array, payloadCrc: number, headerBytes: number): number {
  return crc32(hdr.subarray(16, headerBytes), crc32(hdr.subarray(0, 12), payloadCrc))
}

/**
 * The header of a frame whose payload is `contextLength` bytes of context
 * then the records, `length` bytes in all; `payloadCrc`: crc32 of the payload.
 */
export function frameHeader (seq: number, length: number, count: number, createdMs: number, payloadCrc: number, contextLength: number): Buffer {
  const hdr = Buffer.allocUnsafe(FRAME_HEADER)
  hdr.writeUInt32LE(FRAME_MAGIC, 0)
  hdr.writeUInt32LE(length, 4)
  hdr.writeUInt32LE(count, 8)
  hdr.writeBigUInt64LE(BigInt(seq), 16)
  hdr.writeBigUInt64LE(BigInt(createdMs), 24)
  hdr.writeUInt32LE(contextLength, 32)
  hdr.writeUInt32LE(0, 36)
  hdr.writeUInt32LE(frameCrc(hdr, payloadCrc, FRAME_HEADER), 12)
  return hdr
}

export interface Frame { seq: number, count: number, createdMs: number, records: Uint8Array, context?: Uint8Array }

/** The frame of `seq` read back from its segment; undefined if it is short or fails its checks. */
export function readFrame (seg: Segment, seq: number): Frame | undefined {
  const i = seq - seg.firstSeq
  const hb = frameHeaderBytes(seg.version)
  const buf = Buffer.allocUnsafe(hb + seg.lengths[i])
  const n = readSync(seg.fd, buf, 0, buf.length, seg.offsets[i])
  const payload = buf.subarray(hb)
  if (n !== buf.length || buf.readUInt32LE(0) !== FRAME_MAGIC || Number(buf.readBigUInt64LE(16)) !== seq || frameCrc(buf, crc32(payload), hb) !== buf.readUInt32LE(12)) return undefined
  const ctxLen = seg.version === 1 ? 0 : buf.readUInt32LE(32)
  if (ctxLen > payload.length) return undefined
  const f: Frame = { seq, count: buf.readUInt32LE(8), createdMs: Number(buf.readBigUInt64LE(24)), records: payload.subarray(ctxLen) }
  if (ctxLen > 0) f.context = payload.subarray(0, ctxLen)
  return f
}

/**
 * Read and check one segment; a bad tail (a torn write) is truncated and
 * logged. Returns undefined for a segment without a valid header (the file is
 * deleted), and the bytes cut off.
 */
export function scanSegment (path: string, nameSeq: number, log: Logger): { seg: Segment | undefined, truncatedBytes: number } {
  const fd = openSync(path, 'a+')
  const size = fstatSync(fd).size
  const hdr = Buffer.alloc(SEG_HEADER)
  const read = size >= SEG_HEADER && readSync(fd, hdr, 0, SEG_HEADER, 0) === SEG_HEADER
  const version = !read ? undefined : hdr.subarray(0, 8).equals(SEG_MAGIC) ? 2 : hdr.subarray(0, 8).equals(SEG_MAGIC_V1) ? 1 : undefined
  if (version === undefined || Number(hdr.readBigUInt64LE(8)) !== nameSeq) {
    // a segment whose header never made it to disk holds nothing
    if (size > 0) log.error({ path, bytes: size }, 'spool segment has a bad header; discarding it')
    closeSync(fd)
    unlinkSync(path)
    return { seg: undefined, truncatedBytes: size }
  }
  const seg: Segment = { version, firstSeq: nameSeq, path, fd, size: 0, offsets: [], lengths: [], counts: [] }
  const hb = frameHeaderBytes(version)
  let p = SEG_HEADER
  const fh = Buffer.alloc(hb)
  let problem: string | undefined
  while (p < size) {
    if (p + hb > size) { problem = 'torn frame header'; break }
    readSync(fd, fh, 0, hb, p)
    const len = fh.readUInt32LE(4)
    const expectSeq = nameSeq + seg.offsets.length
    if (fh.readUInt32LE(0) !== FRAME_MAGIC || len > MAX_PAYLOAD) { problem = 'bad frame magic'; break }
    if (Number(fh.readBigUInt64LE(16)) !== expectSeq) { problem = `frame seq ${Number(fh.readBigUInt64LE(16))} where ${expectSeq} was expected`; break }
    if (p + hb + len > size) { problem = 'torn frame payload'; break }
    const payload = Buffer.allocUnsafe(len)
    readSync(fd, payload, 0, len, p + hb)
    if (frameCrc(fh, crc32(payload), hb) !== fh.readUInt32LE(12)) { problem = 'checksum mismatch'; break }
    seg.offsets.push(p)
    seg.lengths.push(len)
    seg.counts.push(fh.readUInt32LE(8))
    p += hb + len
  }
  let truncatedBytes = 0
  if (problem !== undefined) {
    log.warn({ path, offset: p, bytes: size - p, problem, framesKept: seg.offsets.length }, 'spool segment ends in a damaged frame (torn write?); truncating it there')
    ftruncateSync(fd, p)
    truncatedBytes = size - p
  }
  seg.size = p
  return { seg, truncatedBytes }
}

/** The ack watermark in `dir`: 0 when there is none, or it is damaged (every segment is replayed). */
export function readWatermark (dir: string, log: Logger): number {
  const path = join(dir, 'acked')
  if (!existsSync(path)) return 0
  const b = readFileSync(path)
  if (b.length !== 16 || b.readUInt32LE(0) !== ACK_MAGIC || crc32(b.subarray(8)) !== b.readUInt32LE(4)) {
    log.warn({ path }, 'spool ack watermark is damaged; replaying every segment (the collector drops duplicates)')
    return 0
  }
  return Number(b.readBigUInt64LE(8))
}

/** Write the ack watermark atomically: a temp file, then rename. */
export function writeWatermark (dir: string, acked: number): void {
  const b = Buffer.alloc(16)
  b.writeUInt32LE(ACK_MAGIC, 0)
  b.writeBigUInt64LE(BigInt(acked), 8)
  b.writeUInt32LE(crc32(b.subarray(8)), 4)
  const tmp = join(dir, 'acked.tmp')
  writeFileSync(tmp, b)
  renameSync(tmp, join(dir, 'acked'))
}
