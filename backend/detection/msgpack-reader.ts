import { ScanError, T_FALSE, T_MAP, T_NULL, T_NUM, T_OTHER, T_STR, T_TRUE, type Cols, type ScanLimits } from './columns.js'
import { findKey, type TrieNode } from './trie.js'

// The msgpack primitives of the projector: read a scalar into a column cell,
// walk a map along the projected paths' trie, skip anything else while
// enforcing the string-length and depth limits, never reading past the end.

// Buffer's own slice decoders (what toString(enc, start, end) calls after its
// argument checks); declared here because @types/node leaves them out.
interface SliceBuffer extends Buffer {
  latin1Slice: (start: number, end: number) => string
  utf8Slice: (start: number, end: number) => string
}
const INTERN_SIZE = 8192
const INTERN_MAX_LEN = 64

/** What a msgpack value is, by its first byte (for messages). */
export function typeName (b: number): string {
  if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3) || b === 0xca || b === 0xcb) return 'a number'
  if ((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf) return 'a map'
  if ((b >= 0x90 && b <= 0x9f) || b === 0xdc || b === 0xdd) return 'an array'
  if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)) return 'a string'
  switch (b) {
    case 0xc0: return 'nil'
    case 0xc2: case 0xc3: return 'a boolean'
    case 0xc4: case 0xc5: case 0xc6: return 'binary'
  }
  return 'a msgpack extension'
}

export class MsgReader {
  buf: Uint8Array = new Uint8Array(0)
  end = 0
  #dv: DataView = new DataView(new ArrayBuffer(8))
  #text: SliceBuffer = Buffer.alloc(0) as SliceBuffer
  maxStr = 0
  maxDepth = 0
  /** where values are written: the projector's columns */
  cols: Cols
  readonly #intern: Array<string | undefined> = new Array<string | undefined>(INTERN_SIZE)
  /** what the bytes are called in error messages */
  what = 'records'

  constructor (cols: Cols) {
    this.cols = cols
  }

  reset (buf: Uint8Array, limits: ScanLimits, what: string): void {
    this.buf = buf
    this.#dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.#text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength) as SliceBuffer
    this.end = buf.byteLength
    this.maxStr = limits.maxStringBytes
    this.maxDepth = limits.maxDepth
    this.what = what
  }

  need (p: number, n: number): void {
    if (p + n > this.end) throw new ScanError(`${this.what} is truncated inside a msgpack value`)
  }

  u16 (p: number): number { const b = this.buf; return (b[p] << 8) | b[p + 1] }
  u32 (p: number): number { const b = this.buf; return ((b[p] << 24) >>> 0) + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) }

  str (len: number): void {
    if (len > this.maxStr) throw new ScanError(`a string of ${len} bytes is over max_string_bytes ${this.maxStr}`, 'max_string_bytes')
  }

  depth (depth: number): void {
    if (depth > this.maxDepth) throw new ScanError(`${this.what} nest ${depth} levels deep, over max_depth ${this.maxDepth}`, 'max_depth')
  }

  /** The map header at p: [entries, first entry], or undefined when p holds no map. */
  mapHeader (p: number): [number, number] | undefined {
    return this.#header(p, 0x80, 0xde, 0xdf)
  }

  /** The array header at p: [elements, first element], or undefined when p holds no array. */
  arrayHeader (p: number): [number, number] | undefined {
    return this.#header(p, 0x90, 0xdc, 0xdd)
  }

  #header (p: number, fix: number, b16: number, b32: number): [number, number] | undefined {
    const b = this.buf[p]
    if (b >= fix && b <= fix + 15) return [b & 15, p + 1]
    if (b === b16) { this.need(p, 3); return [this.u16(p + 1), p + 3] }
    if (b === b32) { this.need(p, 5); return [this.u32(p + 1), p + 5] }
    return undefined
  }

  /** The string at p as [start, length] of its bytes, or undefined when p holds no string. */
  strAt (p: number): [number, number] | undefined {
    const b = this.buf[p]
    let start: number
    let len: number
    if (b >= 0xa0 && b <= 0xbf) { len = b & 31; start = p + 1 } else if (b === 0xd9) { this.need(p, 2); len = this.buf[p + 1]; start = p + 2 } else if (b === 0xda) { this.need(p, 3); len = this.u16(p + 1); start = p + 3 } else if (b === 0xdb) { this.need(p, 5); len = this.u32(p + 1); start = p + 5 } else return undefined
    this.str(len)
    if (start + len > this.end) throw new ScanError(`${this.what} is truncated inside a string`)
    return [start, len]
  }

  /** Walk the map of `n` entries at p along `node`, writing projected values into the row at `base`. */
  map (p: number, n: number, node: TrieNode, base: number, depth: number): number {
    this.depth(depth)
    const buf = this.buf
    const end = this.end
    const c = this.cols
    for (let k = 0; k < n; k++) {
      if (p >= end) throw new ScanError(`${this.what} is truncated inside a map`)
      const kb = buf[p]
      let child
      if (kb >= 0xa0 && kb <= 0xbf) {
        const len = kb & 31
        this.str(len)
        if (p + 1 + len > end) throw new ScanError(`${this.what} is truncated inside a map key`)
        child = findKey(node, buf, p + 1, len)
        p += 1 + len
      } else if (kb === 0xd9) {
        this.need(p, 2)
        const len = buf[p + 1]
        this.str(len)
        if (p + 2 + len > end) throw new ScanError(`${this.what} is truncated inside a map key`)
        child = findKey(node, buf, p + 2, len)
        p += 2 + len
      } else {
        p = this.skip(p, depth + 1)
      }
      if (p >= end) throw new ScanError(`${this.what} is truncated: a map key has no value`)
      if (child === undefined) { p = this.skip(p, depth + 1); continue }
      const vb = buf[p]
      if (child.node !== undefined) {
        if (vb >= 0x80 && vb <= 0x8f) { p = this.map(p + 1, vb & 15, child.node, base, depth + 1); if (child.slot >= 0) c.typ[base + child.slot] = T_MAP; continue }
        if (vb === 0xde) { this.need(p, 3); p = this.map(p + 3, this.u16(p + 1), child.node, base, depth + 1); if (child.slot >= 0) c.typ[base + child.slot] = T_MAP; continue }
        if (vb === 0xdf) { this.need(p, 5); p = this.map(p + 5, this.u32(p + 1), child.node, base, depth + 1); if (child.slot >= 0) c.typ[base + child.slot] = T_MAP; continue }
      }
      if (child.slot < 0) { p = this.skip(p, depth + 1); continue }
      p = this.value(p, base + child.slot, depth + 1)
    }
    return p
  }

  /** Read a scalar into column index `i`; containers are skipped and typed OTHER. */
  value (p: number, i: number, depth: number): number {
    const c = this.cols
    const buf = this.buf
    const b = buf[p]
    if (b < 0x80) { c.num[i] = b; c.typ[i] = T_NUM; return p + 1 }
    if (b >= 0xe0) { c.num[i] = b - 256; c.typ[i] = T_NUM; return p + 1 }
    if (b >= 0xa0 && b <= 0xbf) {
      const len = b & 31
      this.str(len)
      if (p + 1 + len > this.end) throw new ScanError(`${this.what} is truncated inside a string`)
      c.str[i] = this.decode(p + 1, len); c.typ[i] = T_STR
      return p + 1 + len
    }
    const dv = this.#dv
    switch (b) {
      case 0xc0: c.typ[i] = T_NULL; return p + 1
      case 0xc2: c.typ[i] = T_FALSE; return p + 1
      case 0xc3: c.typ[i] = T_TRUE; return p + 1
      case 0xcc: this.need(p, 2); c.num[i] = buf[p + 1]; c.typ[i] = T_NUM; return p + 2
      case 0xcd: this.need(p, 3); c.num[i] = this.u16(p + 1); c.typ[i] = T_NUM; return p + 3
      case 0xce: this.need(p, 5); c.num[i] = this.u32(p + 1); c.typ[i] = T_NUM; return p + 5
      case 0xcf: this.need(p, 9); c.num[i] = Number(dv.getBigUint64(p + 1)); c.typ[i] = T_NUM; return p + 9
      case 0xd0: this.need(p, 2); c.num[i] = dv.getInt8(p + 1); c.typ[i] = T_NUM; return p + 2
      case 0xd1: this.need(p, 3); c.num[i] = dv.getInt16(p + 1); c.typ[i] = T_NUM; return p + 3
      case 0xd2: this.need(p, 5); c.num[i] = dv.getInt32(p + 1); c.typ[i] = T_NUM; return p + 5
      case 0xd3: this.need(p, 9); c.num[i] = Number(dv.getBigInt64(p + 1)); c.typ[i] = T_NUM; return p + 9
      case 0xca: this.need(p, 5); c.num[i] = dv.getFloat32(p + 1); c.typ[i] = T_NUM; return p + 5
      case 0xcb: this.need(p, 9); c.num[i] = dv.getFloat64(p + 1); c.typ[i] = T_NUM; return p + 9
      case 0xd9: case 0xda: case 0xdb: {
        const hl = b === 0xd9 ? 2 : b === 0xda ? 3 : 5
        this.need(p, hl)
        const len = b === 0xd9 ? buf[p + 1] : b === 0xda ? this.u16(p + 1) : this.u32(p + 1)
        this.str(len)
        if (p + hl + len > this.end) throw new ScanError(`${this.what} is truncated inside a string`)
        c.str[i] = this.decode(p + hl, len); c.typ[i] = T_STR
        return p + hl + len
      }
    }
    c.typ[i] = T_OTHER
    return this.skip(p, depth)
  }

  decode (p: number, len: number): string {
    const buf = this.buf
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

  /** The bytes [from, to) as a latin1 string: a cache key for them. */
  bytesKey (from: number, to: number): string {
    return this.#text.latin1Slice(from, to)
  }

  /** Skip one value whose containers would sit at `depth`. */
  skip (p: number, depth: number): number {
    if (p >= this.end) throw new ScanError(`${this.what} is truncated inside a msgpack value`)
    const buf = this.buf
    const b = buf[p]
    if (b < 0x80 || b >= 0xe0) return p + 1
    if (b <= 0x8f) return this.skipN(p + 1, (b & 15) * 2, depth)
    if (b <= 0x9f) return this.skipN(p + 1, b & 15, depth)
    if (b <= 0xbf) { const len = b & 31; this.str(len); return this.to(p + 1 + len) }
    switch (b) {
      case 0xc0: case 0xc2: case 0xc3: return p + 1
      case 0xcc: case 0xd0: return this.to(p + 2)
      case 0xcd: case 0xd1: return this.to(p + 3)
      case 0xce: case 0xd2: case 0xca: return this.to(p + 5)
      case 0xcf: case 0xd3: case 0xcb: return this.to(p + 9)
      case 0xd4: return this.to(p + 3)
      case 0xd5: return this.to(p + 4)
      case 0xd6: return this.to(p + 6)
      case 0xd7: return this.to(p + 10)
      case 0xd8: return this.to(p + 18)
      case 0xc4: case 0xd9: { this.need(p, 2); const len = buf[p + 1]; this.str(len); return this.to(p + 2 + len) }
      case 0xc5: case 0xda: { this.need(p, 3); const len = this.u16(p + 1); this.str(len); return this.to(p + 3 + len) }
      case 0xc6: case 0xdb: { this.need(p, 5); const len = this.u32(p + 1); this.str(len); return this.to(p + 5 + len) }
      case 0xc7: { this.need(p, 3); const len = buf[p + 1]; this.str(len); return this.to(p + 3 + len) }
      case 0xc8: { this.need(p, 4); const len = this.u16(p + 1); this.str(len); return this.to(p + 4 + len) }
      case 0xc9: { this.need(p, 6); const len = this.u32(p + 1); this.str(len); return this.to(p + 6 + len) }
      case 0xdc: { this.need(p, 3); return this.skipN(p + 3, this.u16(p + 1), depth) }
      case 0xdd: { this.need(p, 5); return this.skipN(p + 5, this.u32(p + 1), depth) }
      case 0xde: { this.need(p, 3); return this.skipN(p + 3, this.u16(p + 1) * 2, depth) }
      case 0xdf: { this.need(p, 5); return this.skipN(p + 5, this.u32(p + 1) * 2, depth) }
    }
    throw new ScanError(`${this.what} holds the invalid msgpack byte 0x${b.toString(16)} at offset ${p}`)
  }

  to (p: number): number {
    if (p > this.end) throw new ScanError(`${this.what} is truncated inside a msgpack value`)
    return p
  }

  skipN (p: number, n: number, depth: number): number {
    this.depth(depth)
    for (let i = 0; i < n; i++) p = this.skip(p, depth + 1)
    return p
  }
}
