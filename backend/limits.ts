import { RECORD_WINDOW } from './detection/field-checks.js'

// Collector limits. A batch over one is refused with an Ack that names the
// limit (REFUSED, a gRPC code, `limit`, and a message saying what to do); the
// stream stays up and picket_collector_refusals_total{limit} goes up.

export interface Limits {
  /** size of Batch.records and Batch.context together */
  maxBatchBytes: number
  /** records in one batch (Batch.count and the array itself) */
  maxRecords: number
  /** any string (key or value) in a record, and the batch's hostname / agent_version */
  maxStringBytes: number
  /** maps and arrays nested inside a record; the record itself is depth 1 */
  maxDepth: number
  /** how far before the collector's clock a record's time may lie */
  maxRecordAgeMs: number
  /** how far after it */
  maxRecordAheadMs: number
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxBatchBytes: 8 * 1024 * 1024,
  maxRecords: 16_384,
  maxStringBytes: 4096,
  maxDepth: 16,
  maxRecordAgeMs: RECORD_WINDOW.maxAgeMs,
  maxRecordAheadMs: RECORD_WINDOW.maxAheadMs,
})

/**
 * The collector's transport caps. grpc-js enforces the per-connection one
 * (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: a client queues streams past it);
 * it has no connection cap, so the collector counts open streams in total and
 * connections with a stream open, and refuses a stream over either cap with
 * RESOURCE_EXHAUSTED, naming the cap and the flag that raises it.
 */
export interface StreamLimits {
  /** Ship streams open at once, over all connections (--max-streams) */
  maxStreams: number
  /** connections with a Ship stream open (--max-connections) */
  maxConnections: number
  /** concurrent streams on one connection (--max-streams-per-connection) */
  maxStreamsPerConnection: number
}

export const DEFAULT_STREAM_LIMITS: Readonly<StreamLimits> = Object.freeze({
  maxStreams: 16_384,
  maxConnections: 16_384,
  maxStreamsPerConnection: 1024,
})

export const LIMIT_NAMES = ['max_batch_bytes', 'max_records', 'max_string_bytes', 'max_depth'] as const
export type LimitName = typeof LIMIT_NAMES[number]

/** Other reasons a batch is refused, counted beside the limits. */
export const REFUSAL_REASONS = [...LIMIT_NAMES, 'host_id', 'seq', 'decode', 'invalid_record'] as const
export type RefusalReason = typeof REFUSAL_REASONS[number]

/**
 * Why the collector refuses or ends a whole Ship stream (not a batch):
 * picket_collector_stream_refusals_total{reason}. max_message_bytes is
 * grpc-js ending a stream whose message is over the receive size
 * (max_batch_bytes plus room for the other Batch fields).
 */
export const STREAM_REFUSALS = ['max_streams', 'max_connections', 'max_message_bytes'] as const
export type StreamRefusal = typeof STREAM_REFUSALS[number]

/** The Ack's `limit`: the limit's name, or '' for a refusal that is not about a limit. */
export function ackLimit (reason: RefusalReason): LimitName | '' {
  return (LIMIT_NAMES as readonly string[]).includes(reason) ? reason as LimitName : ''
}

export function validateLimits (l: Limits): string[] {
  const errors: string[] = []
  if (!Number.isInteger(l.maxBatchBytes) || l.maxBatchBytes < 1024) errors.push('limits.maxBatchBytes must be an integer of at least 1024')
  if (!Number.isInteger(l.maxRecords) || l.maxRecords < 1) errors.push('limits.maxRecords must be a positive integer')
  if (!Number.isInteger(l.maxStringBytes) || l.maxStringBytes < 64) errors.push('limits.maxStringBytes must be an integer of at least 64')
  if (!Number.isInteger(l.maxDepth) || l.maxDepth < 2 || l.maxDepth > 256) errors.push('limits.maxDepth must be an integer from 2 to 256')
  if (!Number.isSafeInteger(l.maxRecordAgeMs) || l.maxRecordAgeMs < 0) errors.push('limits.maxRecordAgeMs must be a whole number of ms, 0 or more')
  if (!Number.isSafeInteger(l.maxRecordAheadMs) || l.maxRecordAheadMs < 0) errors.push('limits.maxRecordAheadMs must be a whole number of ms, 0 or more')
  return errors
}

export function validateStreamLimits (l: StreamLimits): string[] {
  const errors: string[] = []
  for (const k of ['maxStreams', 'maxConnections', 'maxStreamsPerConnection'] as const) {
    if (!Number.isInteger(l[k]) || l[k] < 1) errors.push(`streams.${k} must be a positive integer`)
  }
  return errors
}
