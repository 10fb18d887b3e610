// The projector's output and its errors: flat columns, one row per record,
// one slot per projected field path. Everything that reads rows (rules,
// checks, correlations) imports these; the scanner that fills them is
// projector.ts.

export const T_ABSENT = 0
export const T_NUM = 1
export const T_STR = 2
export const T_TRUE = 3
export const T_FALSE = 4
export const T_NULL = 5
/** an array, binary or extension value (not read) */
export const T_OTHER = 6
/** a map (not read as a value; the fields under it are projected on their own) */
export const T_MAP = 7

/** Row r, slot s lives at index r * S + s of each array. */
export interface Cols {
  S: number
  num: Float64Array
  typ: Uint8Array
  str: Array<string | undefined>
  /** per row: the index of its event class among those the rules select (ClassRouting), -1 for any other */
  cls: Int16Array
}

export interface ScanLimits {
  maxStringBytes: number
  maxDepth: number
  maxRecords: number
  /** how far before the collector's clock a record's time may lie (default RECORD_WINDOW) */
  maxRecordAgeMs?: number
  /** how far after it */
  maxRecordAheadMs?: number
}

export type ScanLimitName = 'max_string_bytes' | 'max_depth' | 'max_records'

export class ScanError extends Error {
  readonly limit: ScanLimitName | undefined
  constructor (message: string, limit?: ScanLimitName) {
    super(message)
    this.name = 'ScanError'
    this.limit = limit
  }
}

/** A well-formed record whose value means nothing: it names the record and the field. */
export class RecordError extends ScanError {
  readonly record: number
  constructor (record: number, message: string) {
    super(`record ${record}: ${message}`)
    this.name = 'RecordError'
    this.record = record
  }
}
