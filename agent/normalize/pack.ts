// A msgpack writer for the decoder's hot path. It emits plain msgpack (no
// extensions, no shared structures), so every batch decodes on its own with
// shared/codec.ts into the same values msgpackr's packing would give. The
// normalisers (net.ts, ...) write lean records with it straight from the raw
// kernel structs: IPv4 text and process names go from the struct's bytes to
// the output with no JS string in between, constant strings are copied as
// ready encodings, and the generic value() is left for the batch context.

const KEY_CACHE_MAX = 4096
const textEncoder = new TextEncoder()

/**
 * An append-only msgpack writer over one growable buffer, reused from batch
 * to batch. The generic value() handles any JSON-like value; callers with a
 * known record shape write its values directly.
 */
export class MsgpackWriter {
  #buf: Uint8Array
  #dv: DataView
  #pos = 0
  readonly #keys = new Map<string, Uint8Array>()

  constructor (initialBytes = 1 << 20) {
    this.#buf = new Uint8Array(initialBytes)
    this.#dv = new DataView(this.#buf.buffer)
  }

  /** Start a new output. */
  reset (): void {
    this.#pos = 0
  }

  get length (): number {
    return this.#pos
  }

  /** The buffer written into: the one given to use(), or a bigger copy of it once it had to grow. */
  get buffer (): Uint8Array {
    return this.#buf
  }

  /** Write into `buf` from its start from now on (a decode task's recycled output buffer, say). */
  use (buf: Uint8Array): void {
    this.#buf = buf
    this.#dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.#pos = 0
  }

  /** Forget what was written from `pos` on. */
  truncate (pos: number): void {
    this.#pos = pos
  }

  /** An array header whose length is filled in later (patchArray32): 5 bytes, valid msgpack for any length. */
  array32 (): number {
    this.ensure(5)
    const at = this.#pos
    this.#buf[at] = 0xdd
    this.#pos = at + 5
    return at
  }

  patchArray32 (at: number, n: number): void {
    this.#dv.setUint32(at + 1, n)
  }

  /** A non-negative integer below 2^32 (a port, a pid, an id): num() without its checks. */
  uint (v: number): void {
    this.ensure(5)
    const buf = this.#buf
    const p = this.#pos
    if (v < 128) { buf[p] = v; this.#pos = p + 1 } else if (v < 256) { buf[p] = 0xcc; buf[p + 1] = v; this.#pos = p + 2 } else if (v < 0x10000) { buf[p] = 0xcd; buf[p + 1] = v >>> 8; buf[p + 2] = v & 0xff; this.#pos = p + 3 } else { buf[p] = 0xce; this.#dv.setUint32(p + 1, v); this.#pos = p + 5 }
  }

  /** A float64, always (epoch milliseconds: past 32 bits, and a uint64 would read back as a BigInt). */
  f64 (v: number): void {
    this.ensure(9)
    this.#buf[this.#pos] = 0xcb
    this.#dv.setFloat64(this.#pos + 1, v)
    this.#pos += 9
  }

  nil (): void {
    this.ensure(1)
    this.#buf[this.#pos++] = 0xc0
  }

  /** An IPv4 address as dotted-quad text, from its 4 bytes (network order) at `off` of `src`. */
  ipv4 (src: Uint8Array, off: number): void {
    this.ensure(16)
    const buf = this.#buf
    const at = this.#pos
    let p = at + 1
    for (let i = 0; i < 4; i++) {
      if (i > 0) buf[p++] = 0x2e
      const b = src[off + i]
      if (b >= 100) { buf[p++] = 0x30 + ((b / 100) | 0); buf[p++] = 0x30 + ((b / 10) | 0) % 10 } else if (b >= 10) buf[p++] = 0x30 + ((b / 10) | 0)
      buf[p++] = 0x30 + b % 10
    }
    buf[at] = 0xa0 | (p - at - 1)
    this.#pos = p
  }

  /**
   * A NUL-terminated field of at most `max` bytes read as Latin-1 (a kernel
   * comm: attacker-controlled, so any byte is taken, never rejected), as the
   * UTF-8 str that Buffer.toString('latin1') then msgpack would give.
   */
  latin1z (src: Uint8Array, off: number, max: number): void {
    let end = off
    let n = 0
    while (end < off + max && src[end] !== 0) { n += src[end] < 0x80 ? 1 : 2; end++ }
    this.ensure(n + 2)
    const buf = this.#buf
    let p = this.#pos
    if (n < 32) buf[p++] = 0xa0 | n
    else { buf[p++] = 0xd9; buf[p++] = n }
    for (let i = off; i < end; i++) {
      const c = src[i]
      if (c < 0x80) buf[p++] = c
      else { buf[p++] = 0xc0 | (c >> 6); buf[p++] = 0x80 | (c & 0x3f) }
    }
    this.#pos = p
  }

  /**
   * The bytes written since reset(), copied into a fresh ArrayBuffer of
   * exactly their size, so the caller may transfer it.
   */
  finish (): Uint8Array {
    return this.#buf.slice(0, this.#pos)
  }

  /** Encode `records` as one msgpack array with the generic writer. */
  pack (records: readonly unknown[]): Uint8Array {
    this.#pos = 0
    this.arrayHeader(records.length)
    for (let i = 0; i < records.length; i++) this.value(records[i])
    return this.finish()
  }

  mapHeader (n: number): void {
    this.ensure(5)
    if (n < 16) this.#buf[this.#pos++] = 0x80 | n
    else if (n < 0x10000) { this.#buf[this.#pos] = 0xde; this.#dv.setUint16(this.#pos + 1, n); this.#pos += 3 } else { this.#buf[this.#pos] = 0xdf; this.#dv.setUint32(this.#pos + 1, n); this.#pos += 5 }
  }

  bool (v: boolean): void {
    this.ensure(1)
    this.#buf[this.#pos++] = v ? 0xc3 : 0xc2
  }

  ensure (n: number): void {
    if (this.#pos + n <= this.#buf.length) return
    let size = Math.max(64, this.#buf.length * 2)
    while (size < this.#pos + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.#buf.subarray(0, this.#pos))
    this.#buf = next
    this.#dv = new DataView(next.buffer)
  }

  raw (b: Uint8Array): void {
    const n = b.length
    this.ensure(n)
    const buf = this.#buf
    let p = this.#pos
    if (n < 24) {
      for (let i = 0; i < n; i++) buf[p++] = b[i]
    } else {
      buf.set(b, p)
      p += n
    }
    this.#pos = p
  }

  arrayHeader (n: number): void {
    this.ensure(5)
    if (n < 16) this.#buf[this.#pos++] = 0x90 | n
    else if (n < 0x10000) { this.#buf[this.#pos] = 0xdc; this.#dv.setUint16(this.#pos + 1, n); this.#pos += 3 } else { this.#buf[this.#pos] = 0xdd; this.#dv.setUint32(this.#pos + 1, n); this.#pos += 5 }
  }

  key (k: string): void {
    let enc = this.#keys.get(k)
    if (enc === undefined) {
      const start = this.#pos
      this.str(k)
      enc = this.#buf.slice(start, this.#pos)
      this.#pos = start
      if (this.#keys.size >= KEY_CACHE_MAX) this.#keys.clear()
      this.#keys.set(k, enc)
    }
    this.raw(enc)
  }

  str (s: string): void {
    const len = s.length
    // worst case 3 bytes per UTF-16 unit, plus the header
    this.ensure(len * 3 + 5)
    const buf = this.#buf
    // optimistic ASCII path: write after a 1-byte (fixstr) or 2-byte (str8) header
    const hdr = len < 32 ? 1 : len < 256 ? 2 : len < 0x10000 ? 3 : 5
    const start = this.#pos
    let p = start + hdr
    let i = 0
    for (; i < len; i++) {
      const c = s.charCodeAt(i)
      if (c >= 0x80) break
      buf[p++] = c
    }
    let n: number
    if (i === len) {
      n = len
    } else {
      // non-ASCII: encode the whole string as UTF-8, then fix the header size
      const utf8 = textEncoder.encode(s)
      n = utf8.length
      const need = n < 32 ? 1 : n < 256 ? 2 : n < 0x10000 ? 3 : 5
      this.ensure(need + n)
      this.#buf.set(utf8, start + need)
      this.#writeStrHeader(start, n, need)
      this.#pos = start + need + n
      return
    }
    this.#writeStrHeader(start, n, hdr)
    this.#pos = p
  }

  #writeStrHeader (at: number, n: number, hdr: number): void {
    const buf = this.#buf
    if (hdr === 1) buf[at] = 0xa0 | n
    else if (hdr === 2) { buf[at] = 0xd9; buf[at + 1] = n } else if (hdr === 3) { buf[at] = 0xda; this.#dv.setUint16(at + 1, n) } else { buf[at] = 0xdb; this.#dv.setUint32(at + 1, n) }
  }

  num (v: number): void {
    this.ensure(9)
    const buf = this.#buf
    const p = this.#pos
    if (Number.isInteger(v)) {
      if (v >= 0) {
        if (v < 128) { buf[p] = v; this.#pos = p + 1; return }
        if (v < 256) { buf[p] = 0xcc; buf[p + 1] = v; this.#pos = p + 2; return }
        if (v < 0x10000) { buf[p] = 0xcd; this.#dv.setUint16(p + 1, v); this.#pos = p + 3; return }
        if (v < 0x100000000) { buf[p] = 0xce; this.#dv.setUint32(p + 1, v); this.#pos = p + 5; return }
      } else {
        if (v >= -32) { buf[p] = v & 0xff; this.#pos = p + 1; return }
        if (v >= -128) { buf[p] = 0xd0; this.#dv.setInt8(p + 1, v); this.#pos = p + 2; return }
        if (v >= -32768) { buf[p] = 0xd1; this.#dv.setInt16(p + 1, v); this.#pos = p + 3; return }
        if (v >= -2147483648) { buf[p] = 0xd2; this.#dv.setInt32(p + 1, v); this.#pos = p + 5; return }
      }
    }
    // beyond 32 bits (epoch milliseconds, say) a float64, as msgpackr writes
    // it: a uint64 would come back from shared/codec.ts as a BigInt
    buf[p] = 0xcb
    this.#dv.setFloat64(p + 1, v)
    this.#pos = p + 9
  }

  value (v: unknown): void {
    switch (typeof v) {
      case 'string': this.str(v); return
      case 'number': this.num(v); return
      case 'boolean': this.bool(v); return
      case 'bigint':
        this.ensure(9)
        if (v >= 0n) { this.#buf[this.#pos] = 0xcf; this.#dv.setBigUint64(this.#pos + 1, v) } else { this.#buf[this.#pos] = 0xd3; this.#dv.setBigInt64(this.#pos + 1, v) }
        this.#pos += 9
        return
      case 'object': {
        if (v === null) { this.ensure(1); this.#buf[this.#pos++] = 0xc0; return }
        if (Array.isArray(v)) {
          this.arrayHeader(v.length)
          for (let i = 0; i < v.length; i++) this.value(v[i])
          return
        }
        if (v instanceof Uint8Array) {
          this.ensure(v.length + 5)
          if (v.length < 256) { this.#buf[this.#pos] = 0xc4; this.#buf[this.#pos + 1] = v.length; this.#pos += 2 } else if (v.length < 0x10000) { this.#buf[this.#pos] = 0xc5; this.#dv.setUint16(this.#pos + 1, v.length); this.#pos += 3 } else { this.#buf[this.#pos] = 0xc6; this.#dv.setUint32(this.#pos + 1, v.length); this.#pos += 5 }
          this.#buf.set(v, this.#pos)
          this.#pos += v.length
          return
        }
        this.object(v as Record<string, unknown>)
        return
      }
      default:
        // undefined and functions: nil, as msgpack has no "absent" (object keys holding them are skipped)
        this.ensure(1)
        this.#buf[this.#pos++] = 0xc0
    }
  }

  object (o: Record<string, unknown>): void {
    // keys are counted while writing: reserve a fixmap byte, widen to map16 after if needed
    this.ensure(1)
    const at = this.#pos++
    let n = 0
    for (const k in o) {
      const val = o[k]
      if (val === undefined || typeof val === 'function') continue
      this.key(k)
      this.value(val)
      n++
    }
    if (n < 16) {
      this.#buf[at] = 0x80 | n
      return
    }
    const extra = n < 0x10000 ? 2 : 4
    this.ensure(extra)
    this.#buf.copyWithin(at + 1 + extra, at + 1, this.#pos)
    if (extra === 2) { this.#buf[at] = 0xde; this.#dv.setUint16(at + 1, n) } else { this.#buf[at] = 0xdf; this.#dv.setUint32(at + 1, n) }
    this.#pos += extra
  }
}

/** The msgpack encoding of `s`, to copy with raw() where the same string is written again and again. */
export function encodeStr (s: string): Uint8Array {
  const w = new MsgpackWriter(s.length * 3 + 5)
  w.str(s)
  return w.finish()
}
