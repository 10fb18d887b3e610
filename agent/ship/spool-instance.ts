import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { Logger } from '../../shared/logger.js'
import { crc32 } from '../crc32.js'

// The spool's instance id: a random 128-bit id (hex) that names its seq
// stream. The collector keeps one dedup floor per (host, instance), so a seq
// stream that restarts at 1 must never reuse an id whose floor is higher: the
// id is minted whenever the spool starts a new stream, and whenever the file
// is damaged (its old id is unknown, so it cannot be reused by mistake).
//
// The `instance` file is 24 bytes: u32 magic "PKSI", u32 crc32 of bytes
// [8,24), then the 16 id bytes. A spool from before instance ids has a seq
// stream and no file: it keeps the legacy instance '' (whose floor the
// collector already holds) until its stream restarts.

const MAGIC = 0x49534b50
const SIZE = 24

function read (path: string): string | undefined {
  const b = readFileSync(path)
  if (b.length !== SIZE || b.readUInt32LE(0) !== MAGIC || crc32(b.subarray(8)) !== b.readUInt32LE(4)) return undefined
  return b.subarray(8).toString('hex')
}

/** Write a new id, durably (temp file, fsync, rename, fsync of the folder), before any batch carries it. */
function mint (dir: string): string {
  const b = Buffer.alloc(SIZE)
  b.writeUInt32LE(MAGIC, 0)
  randomBytes(16).copy(b, 8)
  b.writeUInt32LE(crc32(b.subarray(8)), 4)
  const tmp = join(dir, 'instance.tmp')
  const fd = openSync(tmp, 'w')
  try { writeSync(fd, b); fsyncSync(fd) } finally { closeSync(fd) }
  renameSync(tmp, join(dir, 'instance'))
  const dfd = openSync(dir, 'r')
  try { fsyncSync(dfd) } catch {} finally { closeSync(dfd) }
  return b.subarray(8).toString('hex')
}

/**
 * The instance id of the spool in `dir`. `newStream`: the spool's seq starts
 * at 1 (no segments and no watermark survived), so a new id is minted.
 */
export function spoolInstance (dir: string, newStream: boolean, log: Logger): string {
  const path = join(dir, 'instance')
  const had = existsSync(path)
  if (!newStream) {
    if (!had) return ''
    const id = read(path)
    if (id !== undefined) return id
    log.warn({ path }, 'spool instance file is damaged; minting a new instance id (the spooled batches are sent under it)')
  }
  const id = mint(dir)
  if (had && newStream) log.info({ dir, instance: id }, 'spool seq stream restarts at 1: new instance id, so the collector cannot take its batches for old ones')
  return id
}
