// A msgpack scanner that walks a batch once, checks the collector's structural
// limits (string length, nesting depth, record count) and copies only the
// fields the compiled rules read into flat columns. Everything else is
// skipped without being materialised: a full decode allocates every key,
// string and nested object of every record, and that allocation is what
// bounds a detection worker's throughput. The batch must be a msgpack array
// of maps, as shared/codec.ts writes it. Given RecordChecks, it checks each
// record's cells for meaning (field-checks.ts) as soon as the record is read.

import type { RecordChecks } from './field-checks.js'

export const T_ABSENT = 0
export const T_NUM = 1
export const T_STR = 2
export const T_TRUE = 3
export const T_FALSE = 4
export const T_NULL = 5
export const T_OTHER = 6

/** Row r, slot s lives at index r * S + s of each array. */
export interface Cols {
  S: number
  num: Float64Array
  typ: Uint8Array
  str: Array<string | undefined>
  /** byte range of row r's record inside the batch, for full decode of evidence */
  start: Int32Array
  end: Int32Array
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

/** What a msgpack value that is not a map is, by its first byte. */
function notMap (b: number): string {
  if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3) || b === 0xca || b === 0xcb) return 'a number'
  if (b >= 0x90 && b <= 0x9f) return 'an array'
  if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)) return 'a string'
  switch (b) {
    case 0xc0: return 'nil'
    case 0xc2: case 0xc3: return 'a boolean'
    case 0xc4: case 0xc5: case 0xc6: return 'binary'
    case 0xdc: case 0xdd: return 'an array'
  }
  return 'a msgpack extension'
}

/** A key on a projected path: its column slot (-1 inside the path) and its field's check (-1 for none). */
interface TrieChild { bytes: Uint8Array, slot: number, check: number, node: TrieNode | undefined }
interface TrieNode { byLen: Array<TrieChild[] | undefined> }

const enc = new TextEncoder()

// Buffer's own slice decoders (what toString(enc, start, end) calls after its
// argument checks); declared here because @types/node leaves them out.
interface SliceBuffer extends Buffer {
  latin1Slice: (start: number, end: number) => string
  utf8Slice: (start: number, end: number) => string
}
const INTERN_SIZE = 8192
const INTERN_MAX_LEN = 64

function buildTrie (paths: readonly string[], checks: RecordChecks | undefined): TrieNode {
  const root: TrieNode = { byLen: [] }
  paths.forEach((path, slot) => {
    let node = root
    const parts = path.split('.')
    parts.forEach((part, i) => {
      const bytes = enc.encode(part)
      const list = node.byLen[bytes.length] ?? (node.byLen[bytes.length] = [])
      let child = list.find(c => c.bytes.every((b, j) => bytes[j] === b))
      if (child === undefined) {
        child = { bytes, slot: -1, check: -1, node: undefined }
        list.push(child)
      }
      if (i === parts.length - 1) {
        child.slot = slot
        child.check = checks?.checkOf(slot) ?? -1
      } else node = child.node ??= { byLen: [] }
    })
  })
  return root
}

export class Projector {
  readonly paths: readonly string[]
  readonly S: number
  readonly cols: Cols
  readonly #root: TrieNode
  readonly #checks: RecordChecks | undefined
  #buf: Uint8Array = new Uint8Array(0)
  #dv: DataView = new DataView(new ArrayBuffer(8))
  #text: SliceBuffer = Buffer.alloc(0) as SliceBuffer
  #end = 0
  #maxStr = 0
  #maxDepth = 0
  /** the record being read, for RecordError */
  #row = 0
  readonly #intern: Array<string | undefined> = new Array<string | undefined>(INTERN_SIZE)

  constructor (paths: readonly string[], rows = 1024, checks?: RecordChecks) {
    this.paths = paths
    this.S = paths.length
    this.#root = buildTrie(paths, checks)
    this.#checks = checks
    this.cols = { S: this.S, num: new Float64Array(0), typ: new Uint8Array(0), str: [], start: new Int32Array(0), end: new Int32Array(0) }
    this.#grow(rows)
  }

  slot (path: string): number {
    const i = this.paths.indexOf(path)
    if (i < 0) throw new Error(`field ${path} is not projected`)
    return i
  }

  #grow (rows: number): void {
    const c = this.cols
    if (c.start.length >= rows) return
    const n = Math.max(rows, c.start.length * 2)
    c.num = new Float64Array(n * this.S)
    c.typ = new Uint8Array(n * this.S)
    c.str = new Array<string | undefined>(n * this.S).fill(undefined)
    c.start = new Int32Array(n)
    c.end = new Int32Array(n)
  }

  /**
   * Scan `buf` (one batch: a msgpack array of records). Returns the number of
   * rows. Throws ScanError when a limit is exceeded or the bytes are not a
   * well-formed msgpack array, RecordError when a record is not a map or
   * fails a check (`now` is the collector's clock, for the time window); the
   * columns are then partially filled and must not be used.
   */
  scan (buf: Uint8Array, limits: ScanLimits, now: number): number {
    this.#buf = buf
    this.#dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.#text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength) as SliceBuffer
    this.#end = buf.byteLength
    this.#maxStr = limits.maxStringBytes
    this.#maxDepth = limits.maxDepth
    if (this.#end === 0) throw new ScanError('records is empty; send a msgpack array (an empty batch is the one-byte array 0x90)')
    const b0 = buf[0]
    let n: number
    let p: number
    if (b0 >= 0x90 && b0 <= 0x9f) { n = b0 & 15; p = 1 } else if (b0 === 0xdc) { this.#need(0, 3); n = this.#u16(1); p = 3 } else if (b0 === 0xdd) { this.#need(0, 5); n = this.#u32(1); p = 5 } else throw new ScanError('records is not a msgpack array of records')
    if (n > limits.maxRecords) throw new ScanError(`the batch holds ${n} records, over max_records ${limits.maxRecords}`, 'max_records')
    this.#grow(n)
    const c = this.cols
    const S = this.S
    const typ = c.typ
    const str = c.str
    const checks = this.#checks
    checks?.at(now)
    for (let r = 0; r < n; r++) {
      const base = r * S
      typ.fill(0, base, base + S)
      for (let s = 0; s < S; s++) str[base + s] = undefined
      c.start[r] = p
      this.#row = r
      if (p >= this.#end) throw new ScanError(`records is truncated: record ${r} of ${n} is missing`)
      const h = buf[p]
      if (h >= 0x80 && h <= 0x8f) p = this.#map(p + 1, h & 15, this.#root, base, 1)
      else if (h === 0xde) { this.#need(p, 3); p = this.#map(p + 3, this.#u16(p + 1), this.#root, base, 1) } else if (h === 0xdf) { this.#need(p, 5); p = this.#map(p + 5, this.#u32(p + 1), this.#root, base, 1) } else this.#notMap(r, p)
      c.end[r] = p
      if (checks !== undefined) {
        const k = checks.row(c, base)
        if (k >= 0) throw new RecordError(r, checks.problem(k, c, base))
      }
    }
    if (p !== this.#end) throw new ScanError(`records has ${this.#end - p} bytes after its last record; a batch is exactly one msgpack array`)
    return n
  }

  /** Record r at p is not a map: refuse it, unless its bytes are not even msgpack (that is the worse problem). */
  #notMap (r: number, p: number): never {
    this.#skip(p, 1)
    throw new RecordError(r, `the record is ${notMap(this.#buf[p])}, not a map; each record is one OCSF object`)
  }

  #need (p: number, n: number): void {
    if (p + n > this.#end) throw new ScanError('records is truncated inside a msgpack value')
  }

  #u16 (p: number): number { const b = this.#buf; return (b[p] << 8) | b[p + 1] }
  #u32 (p: number): number { const b = this.#buf; return ((b[p] << 24) >>> 0) + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) }

  #str (len: number): void {
    if (len > this.#maxStr) throw new ScanError(`a string of ${len} bytes is over max_string_bytes ${this.#maxStr}`, 'max_string_bytes')
  }

  #find (node: TrieNode, p: number, len: number): TrieChild | undefined {
    const list = node.byLen[len]
    if (list === undefined) return undefined
    const buf = this.#buf
    outer: for (let i = 0; i < list.length; i++) {
      const kb = list[i].bytes
      for (let j = 0; j < len; j++) if (kb[j] !== buf[p + j]) continue outer
      return list[i]
    }
    return undefined
  }

  #map (p: number, n: number, node: TrieNode, base: number, depth: number): number {
    if (depth > this.#maxDepth) throw new ScanError(`records nest ${depth} levels deep, over max_depth ${this.#maxDepth}`, 'max_depth')
    const buf = this.#buf
    const end = this.#end
    for (let k = 0; k < n; k++) {
      if (p >= end) throw new ScanError('records is truncated inside a map')
      const kb = buf[p]
      let child: TrieChild | undefined
      if (kb >= 0xa0 && kb <= 0xbf) {
        const len = kb & 31
        this.#str(len)
        if (p + 1 + len > end) throw new ScanError('records is truncated inside a map key')
        child = this.#find(node, p + 1, len)
        p += 1 + len
      } else if (kb === 0xd9) {
        this.#need(p, 2)
        const len = buf[p + 1]
        this.#str(len)
        if (p + 2 + len > end) throw new ScanError('records is truncated inside a map key')
        child = this.#find(node, p + 2, len)
        p += 2 + len
      } else {
        p = this.#skip(p, depth + 1)
      }
      if (p >= end) throw new ScanError('records is truncated: a map key has no value')
      if (child === undefined) { p = this.#skip(p, depth + 1); continue }
      const vb = buf[p]
      if (child.node !== undefined) {
        if (vb >= 0x80 && vb <= 0x8f) { p = this.#map(p + 1, vb & 15, child.node, base, depth + 1); if (child.slot >= 0) this.cols.typ[base + child.slot] = T_OTHER; continue }
        if (vb === 0xde) { this.#need(p, 3); p = this.#map(p + 3, this.#u16(p + 1), child.node, base, depth + 1); if (child.slot >= 0) this.cols.typ[base + child.slot] = T_OTHER; continue }
      }
      if (child.slot < 0) { p = this.#skip(p, depth + 1); continue }
      p = this.#value(p, base + child.slot, depth + 1)
      if (child.check >= 0) {
        const checks = this.#checks as RecordChecks
        if (!checks.cell(child.check, this.cols, base + child.slot)) throw new RecordError(this.#row, checks.problem(child.check, this.cols, base))
      }
    }
    return p
  }

  /** Read a scalar into column index `i`; containers are skipped and typed OTHER. */
  #value (p: number, i: number, depth: number): number {
    const c = this.cols
    const buf = this.#buf
    const b = buf[p]
    if (b < 0x80) { c.num[i] = b; c.typ[i] = T_NUM; return p + 1 }
    if (b >= 0xe0) { c.num[i] = b - 256; c.typ[i] = T_NUM; return p + 1 }
    if (b >= 0xa0 && b <= 0xbf) {
      const len = b & 31
      this.#str(len)
      if (p + 1 + len > this.#end) throw new ScanError('records is truncated inside a string')
      c.str[i] = this.#decode(p + 1, len); c.typ[i] = T_STR
      return p + 1 + len
    }
    switch (b) {
      case 0xc0: c.typ[i] = T_NULL; return p + 1
      case 0xc2: c.typ[i] = T_FALSE; return p + 1
      case 0xc3: c.typ[i] = T_TRUE; return p + 1
      case 0xcc: this.#need(p, 2); c.num[i] = buf[p + 1]; c.typ[i] = T_NUM; return p + 2
      case 0xcd: this.#need(p, 3); c.num[i] = this.#u16(p + 1); c.typ[i] = T_NUM; return p + 3
      case 0xce: this.#need(p, 5); c.num[i] = this.#u32(p + 1); c.typ[i] = T_NUM; return p + 5
      case 0xcf: this.#need(p, 9); c.num[i] = Number(this.#dv.getBigUint64(p + 1)); c.typ[i] = T_NUM; return p + 9
      case 0xd0: this.#need(p, 2); c.num[i] = this.#dv.getInt8(p + 1); c.typ[i] = T_NUM; return p + 2
      case 0xd1: this.#need(p, 3); c.num[i] = this.#dv.getInt16(p + 1); c.typ[i] = T_NUM; return p + 3
      case 0xd2: this.#need(p, 5); c.num[i] = this.#dv.getInt32(p + 1); c.typ[i] = T_NUM; return p + 5
      case 0xd3: this.#need(p, 9); c.num[i] = Number(this.#dv.getBigInt64(p + 1)); c.typ[i] = T_NUM; return p + 9
      case 0xca: this.#need(p, 5); c.num[i] = this.#dv.getFloat32(p + 1); c.typ[i] = T_NUM; return p + 5
      case 0xcb: this.#need(p, 9); c.num[i] = this.#dv.getFloat64(p + 1); c.typ[i] = T_NUM; return p + 9
      case 0xd9: case 0xda: case 0xdb: {
        const hl = b === 0xd9 ? 2 : b === 0xda ? 3 : 5
        this.#need(p, hl)
        const len = b === 0xd9 ? buf[p + 1] : b === 0xda ? this.#u16(p + 1) : this.#u32(p + 1)
        this.#str(len)
        if (p + hl + len > this.#end) throw new ScanError('records is truncated inside a string')
        c.str[i] = this.#decode(p + hl, len); c.typ[i] = T_STR
        return p + hl + len
      }
    }
    c.typ[i] = T_OTHER
    return this.#skip(p, depth)
  }

  #decode (p: number, len: number): string {
    const buf = this.#buf
    if (len <= INTERN_MAX_LEN) {
      let h = 0x811c9dc5
      let ascii = true
      for (let j = 0; j < len; j++) {
        const x = buf[p + j]
        if (x > 0x7f) { ascii = false; break }
        h = Math.imul(h ^ x, 0x01000193)
      }
      if (ascii) {
        const slot = (h >>> 0) & (INTERN_SIZE - 1)
        const cand = this.#intern[slot]
        if (cand !== undefined && cand.length === len) {
          let same = true
          for (let j = 0; j < len; j++) if (cand.charCodeAt(j) !== buf[p + j]) { same = false; break }
          if (same) return cand
        }
        const s = this.#text.latin1Slice(p, p + len)
        this.#intern[slot] = s
        return s
      }
    }
    return this.#text.utf8Slice(p, p + len)
  }

  /** Skip one value whose containers would sit at `depth`. */
  #skip (p: number, depth: number): number {
    if (p >= this.#end) throw new ScanError('records is truncated inside a msgpack value')
    const buf = this.#buf
    const b = buf[p]
    if (b < 0x80 || b >= 0xe0) return p + 1
    if (b <= 0x8f) return this.#skipN(p + 1, (b & 15) * 2, depth)
    if (b <= 0x9f) return this.#skipN(p + 1, b & 15, depth)
    if (b <= 0xbf) { const len = b & 31; this.#str(len); return this.#to(p + 1 + len) }
    switch (b) {
      case 0xc0: case 0xc2: case 0xc3: return p + 1
      case 0xcc: case 0xd0: return this.#to(p + 2)
      case 0xcd: case 0xd1: return this.#to(p + 3)
      case 0xce: case 0xd2: case 0xca: return this.#to(p + 5)
      case 0xcf: case 0xd3: case 0xcb: return this.#to(p + 9)
      case 0xd4: return this.#to(p + 3)
      case 0xd5: return this.#to(p + 4)
      case 0xd6: return this.#to(p + 6)
      case 0xd7: return this.#to(p + 10)
      case 0xd8: return this.#to(p + 18)
      case 0xc4: case 0xd9: { this.#need(p, 2); const len = buf[p + 1]; this.#str(len); return this.#to(p + 2 + len) }
      case 0xc5: case 0xda: { this.#need(p, 3); const len = this.#u16(p + 1); this.#str(len); return this.#to(p + 3 + len) }
      case 0xc6: case 0xdb: { this.#need(p, 5); const len = this.#u32(p + 1); this.#str(len); return this.#to(p + 5 + len) }
      case 0xc7: { this.#need(p, 3); const len = buf[p + 1]; this.#str(len); return this.#to(p + 3 + len) }
      case 0xc8: { this.#need(p, 4); const len = this.#u16(p + 1); this.#str(len); return this.#to(p + 4 + len) }
      case 0xc9: { this.#need(p, 6); const len = this.#u32(p + 1); this.#str(len); return this.#to(p + 6 + len) }
      case 0xdc: { this.#need(p, 3); return this.#skipN(p + 3, this.#u16(p + 1), depth) }
      case 0xdd: { this.#need(p, 5); return this.#skipN(p + 5, this.#u32(p + 1), depth) }
      case 0xde: { this.#need(p, 3); return this.#skipN(p + 3, this.#u16(p + 1) * 2, depth) }
      case 0xdf: { this.#need(p, 5); return this.#skipN(p + 5, this.#u32(p + 1) * 2, depth) }
    }
    throw new ScanError(`records holds the invalid msgpack byte 0x${b.toString(16)} at offset ${p}`)
  }

  #to (p: number): number {
    if (p > this.#end) throw new ScanError('records is truncated inside a msgpack value')
    return p
  }

  #skipN (p: number, n: number, depth: number): number {
    if (depth > this.#maxDepth) throw new ScanError(`records nest ${depth} levels deep, over max_depth ${this.#maxDepth}`, 'max_depth')
    for (let i = 0; i < n; i++) p = this.#skip(p, depth + 1)
    return p
  }
}
