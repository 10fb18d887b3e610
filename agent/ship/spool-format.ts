import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readSync, renameSync, unlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../../shared/logger.js'
import { crc32 } from '../crc32.js'

// The spool's files. A spool folder (one per host id) holds:
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
// The watermark file is 16 bytes: u32 magic "PKSA", u32 crc32 of bytes
// [8,16), u64 the watermark.

export const SEG_MAGIC = Buffer.from('PKSPSEG1', 'latin1')
export const SEG_HEADER = 16
export const FRAME_MAGIC = 0x46534b50
export const FRAME_HEADER = 32
const ACK_MAGIC = 0x41534b50
const MAX_PAYLOAD = 256 * 1024 * 1024

export interface Segment {
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

// the payload comes first so a decoder thread can checksum it off the main thread
function frameCrc (hdr: Uint8Array, payloadCrc: number): number {
  return crc32(hdr.subarray(16, FRAME_HEADER), crc32(hdr.subarray(0, 12), payloadCrc))
}

/** The header of a frame; `payloadCrc`: crc32 of the payload. */
export function frameHeader (seq: number, length: number, count: number, createdMs: number, payloadCrc: number): Buffer {
  const hdr = Buffer.allocUnsafe(FRAME_HEADER)
  hdr.writeUInt32LE(FRAME_MAGIC, 0)
  hdr.writeUInt32LE(length, 4)
  hdr.writeUInt32LE(count, 8)
  hdr.writeBigUInt64LE(BigInt(seq), 16)
  hdr.writeBigUInt64LE(BigInt(createdMs), 24)
  hdr.writeUInt32LE(frameCrc(hdr, payloadCrc), 12)
  return hdr
}

/** The frame of `seq` read back from its segment; undefined if it is short or fails its checks. */
export function readFrame (seg: Segment, seq: number): { seq: number, count: number, createdMs: number, records: Uint8Array } | undefined {
  const i = seq - seg.firstSeq
  const buf = Buffer.allocUnsafe(FRAME_HEADER + seg.lengths[i])
  const n = readSync(seg.fd, buf, 0, buf.length, seg.offsets[i])
  const payload = buf.subarray(FRAME_HEADER)
  if (n !== buf.length || buf.readUInt32LE(0) !== FRAME_MAGIC || Number(buf.readBigUInt64LE(16)) !== seq || frameCrc(buf, crc32(payload)) !== buf.readUInt32LE(12)) return undefined
  return { seq, count: buf.readUInt32LE(8), createdMs: Number(buf.readBigUInt64LE(24)), records: payload }
}

/**
 * Read and check one segment; a bad tail (a torn write) is truncated and
 * logged. Returns undefined for a segment without a valid header (the file is
 * deleted), and the bytes cut off.
 */
export function scanSegment (path: string, nameSeq: number, log: Logger): { seg: Segment | undefined, truncatedBytes: number } {
  const fd = openSync(path, 'a+')
  const size = fstatSync(fd).size
  const seg: Segment = { firstSeq: nameSeq, path, fd, size: 0, offsets: [], lengths: [], counts: [] }
  const hdr = Buffer.alloc(SEG_HEADER)
  if (size < SEG_HEADER || readSync(fd, hdr, 0, SEG_HEADER, 0) !== SEG_HEADER || !hdr.subarray(0, 8).equals(SEG_MAGIC) || Number(hdr.readBigUInt64LE(8)) !== nameSeq) {
    // a segment whose header never made it to disk holds nothing
    if (size > 0) log.error({ path, bytes: size }, 'spool segment has a bad header; discarding it')
    closeSync(fd)
    unlinkSync(path)
    return { seg: undefined, truncatedBytes: size }
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
