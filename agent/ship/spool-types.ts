import type { Logger } from '../../shared/logger.js'

// The disk spool's public types (spool.ts).

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
  /** what the records share (collector.proto Batch.context); absent: full-form records */
  context?: Uint8Array
  /** called once the spool holds no reference to `records` and `context` any more */
  release?: () => void
}

export interface AppendExtras {
  context?: Uint8Array
  /** crc32 of the context then the records, when the caller has it already */
  crc?: number
  /** called once the spool holds no reference to the bytes any more */
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
  /** the instance id of this seq stream ('': a spool from before instance ids) */
  instance: string
  cacheBytes: number
  evictedBatches: number
  evictedRecords: number
  /** bytes cut from segment tails that failed their checks at open */
  truncatedBytes: number
}
