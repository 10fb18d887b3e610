// Names on connections (issue #14 §3): answer address → the name that was
// asked for, host-wide, in a SharedArrayBuffer every decode worker maps.
// Decoders have no affinity: the worker that decodes a DNS answer is seldom
// the one that decodes the connection made to its address, so the table
// cannot live in one worker's heap. Writers are the DNS normaliser, readers
// the network normaliser; a slot is guarded by a seqlock (odd = being
// written), so a reader never returns a half-written name, and a writer
// that finds a slot busy drops its update (counted) rather than wait.
//
// The table is set-associative: an address hashes to a bucket of WAYS slots;
// a full bucket evicts its oldest entry (counted). Bounded memory, no
// allocation after creation, no lock held across workers.

const WAYS = 4
const NAME_MAX = 253
/** seq i32, name length u16, family marker u16, seen f64, expires f64, address 16, name */
const OFF = { seq: 0, len: 4, seen: 8, expires: 16, addr: 24, name: 40 } as const
const SLOT = 40 + 256
const HEAD = 64
const STAT = { inserts: 0, updates: 1, evictions: 2, contended: 3, buckets: 4 } as const

/** Answers are kept at least this long whatever their TTL: local resolvers answer with TTL 0. */
export const NAME_MIN_KEEP_MS = 5 * 60_000
/** ... and at most this long. */
export const NAME_MAX_KEEP_MS = 24 * 3600_000

export interface NameCacheStats { inserts: number, updates: number, evictions: number, contended: number, slots: number }

/** IPv4 "a.b.c.d" or IPv6 text into 16 bytes (IPv4 as ::ffff:a.b.c.d); false if it is neither. */
export function ipToBytes (ip: string, out: Uint8Array, off = 0): boolean {
  out.fill(0, off, off + 16)
  if (ip.includes(':')) {
    let s = ip
    const dot = s.lastIndexOf('.')
    if (dot >= 0) {
      // a trailing dotted quad (::ffff:1.2.3.4) is the last two groups
      const c = s.lastIndexOf(':')
      const v4 = new Uint8Array(4)
      if (!ipv4Bytes(s.slice(c + 1), v4, 0)) return false
      s = `${s.slice(0, c + 1)}${((v4[0] << 8) | v4[1]).toString(16)}:${((v4[2] << 8) | v4[3]).toString(16)}`
    }
    const halves = s.split('::')
    if (halves.length > 2) return false
    const parse = (h: string): number[] | undefined => {
      if (h === '') return []
      const out: number[] = []
      for (const g of h.split(':')) {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
        out.push(parseInt(g, 16))
      }
      return out
    }
    const head = parse(halves[0])
    const rest = halves.length === 2 ? parse(halves[1]) : []
    if (head === undefined || rest === undefined) return false
    if (halves.length === 2 && head.length + rest.length > 7) return false
    const groups = halves.length === 2 ? [...head, ...new Array<number>(8 - head.length - rest.length).fill(0), ...rest] : head
    if (groups.length !== 8) return false
    for (let i = 0; i < 8; i++) { out[off + 2 * i] = groups[i] >> 8; out[off + 2 * i + 1] = groups[i] & 0xff }
    return true
  }
  out[off + 10] = 0xff; out[off + 11] = 0xff
  return ipv4Bytes(ip, out, off + 12)
}

function ipv4Bytes (ip: string, out: Uint8Array, off: number): boolean {
  const parts = ip.split('.')
  if (parts.length !== 4) return false
  for (let i = 0; i < 4; i++) {
    if (!/^\d{1,3}$/.test(parts[i])) return false
    const n = Number(parts[i])
    if (n > 255) return false
    out[off + i] = n
  }
  return true
}

/** Allocate the table's memory (main thread); hand it to every decode worker. */
export function createNameCacheMemory (buckets = 4096): SharedArrayBuffer {
  if (!Number.isInteger(buckets) || buckets < 1 || (buckets & (buckets - 1)) !== 0) throw new Error(`name cache buckets must be a power of two, got ${buckets}`)
  const sab = new SharedArrayBuffer(HEAD + buckets * WAYS * SLOT)
  new Int32Array(sab, 0, HEAD / 4)[STAT.buckets] = buckets
  return sab
}

export class NameCache {
  readonly #i32: Int32Array
  readonly #u8: Uint8Array
  readonly #dv: DataView
  readonly #mask: number
  readonly #key = new Uint8Array(16)
  readonly #enc = new TextEncoder()
  readonly #dec = new TextDecoder()

  constructor (memory: SharedArrayBuffer) {
    this.#i32 = new Int32Array(memory)
    this.#u8 = new Uint8Array(memory)
    this.#dv = new DataView(memory)
    const buckets = this.#i32[STAT.buckets]
    if (buckets < 1 || memory.byteLength !== HEAD + buckets * WAYS * SLOT) throw new Error('not a name cache memory (createNameCacheMemory)')
    this.#mask = buckets - 1
  }

  /** Remember that `ip` answered `name` at `nowMs` with `ttlS`. */
  put (ip: string, name: string, ttlS: number, nowMs: number): void {
    if (!ipToBytes(ip, this.#key)) return
    const nb = this.#enc.encode(name.length > NAME_MAX ? name.slice(0, NAME_MAX) : name)
    const len = Math.min(nb.length, NAME_MAX)
    const keep = Math.min(Math.max(ttlS * 1000, NAME_MIN_KEEP_MS), NAME_MAX_KEEP_MS)
    const base = this.#bucket(this.#key, 0)
    let target = -1
    let oldest = Infinity
    let update = false
    for (let w = 0; w < WAYS; w++) {
      const s = base + w * SLOT
      if (this.#sameKey(s, this.#key, 0)) { target = s; update = true; break }
      const seen = this.#dv.getFloat64(s + OFF.seen, true)
      if (seen < oldest) { oldest = seen; target = s }
    }
    const seqIdx = target / 4
    const seq = Atomics.load(this.#i32, seqIdx)
    if ((seq & 1) === 1 || Atomics.compareExchange(this.#i32, seqIdx, seq, seq + 1) !== seq) {
      Atomics.add(this.#i32, STAT.contended, 1)
      return
    }
    const stat = update ? STAT.updates : oldest === 0 ? STAT.inserts : STAT.evictions
    this.#dv.setUint16(target + OFF.len, len, true)
    this.#dv.setFloat64(target + OFF.seen, nowMs, true)
    this.#dv.setFloat64(target + OFF.expires, nowMs + keep, true)
    this.#u8.set(this.#key, target + OFF.addr)
    this.#u8.set(nb.subarray(0, len), target + OFF.name)
    Atomics.store(this.#i32, seqIdx, seq + 2)
    Atomics.add(this.#i32, stat, 1)
    if (stat === STAT.evictions) Atomics.add(this.#i32, STAT.inserts, 1)
  }

  /** The name last answered for `ip`, if still kept at `nowMs`. */
  get (ip: string, nowMs: number): string | undefined {
    if (!ipToBytes(ip, this.#key)) return undefined
    return this.getBytes(this.#key, 0, nowMs)
  }

  /** As get(), the address in a raw record: 4 bytes (IPv4) or 16 at `off` of `buf`. */
  getAt (buf: Uint8Array, off: number, v6: boolean, nowMs: number): string | undefined {
    const k = this.#key
    if (v6) k.set(buf.subarray(off, off + 16))
    else { k.fill(0, 0, 10); k[10] = 0xff; k[11] = 0xff; k.set(buf.subarray(off, off + 4), 12) }
    return this.getBytes(k, 0, nowMs)
  }

  /** As get(), the address as 16 bytes at `off` of `addr` (IPv4 as ::ffff:a.b.c.d). */
  getBytes (addr: Uint8Array, off: number, nowMs: number): string | undefined {
    const base = this.#bucket(addr, off)
    for (let w = 0; w < WAYS; w++) {
      const s = base + w * SLOT
      const seq = Atomics.load(this.#i32, s / 4)
      if ((seq & 1) === 1 || seq === 0 || !this.#sameKey(s, addr, off)) continue
      const expires = this.#dv.getFloat64(s + OFF.expires, true)
      const len = Math.min(this.#dv.getUint16(s + OFF.len, true), NAME_MAX)
      const name = this.#dec.decode(this.#u8.slice(s + OFF.name, s + OFF.name + len))
      if (Atomics.load(this.#i32, s / 4) !== seq) return undefined // rewritten while read: miss, never a torn name
      return expires >= nowMs ? name : undefined
    }
    return undefined
  }

  stats (): NameCacheStats {
    const i = this.#i32
    return {
      inserts: Atomics.load(i, STAT.inserts),
      updates: Atomics.load(i, STAT.updates),
      evictions: Atomics.load(i, STAT.evictions),
      contended: Atomics.load(i, STAT.contended),
      slots: (this.#mask + 1) * WAYS,
    }
  }

  #bucket (k: Uint8Array, off: number): number {
    let h = 0x811c9dc5
    for (let i = 0; i < 16; i++) h = Math.imul(h ^ k[off + i], 0x01000193)
    return HEAD + ((h >>> 0) & this.#mask) * WAYS * SLOT
  }

  #sameKey (s: number, k: Uint8Array, off: number): boolean {
    if (this.#dv.getFloat64(s + OFF.seen, true) === 0) return false
    const u8 = this.#u8
    for (let i = 0; i < 16; i++) if (u8[s + OFF.addr + i] !== k[off + i]) return false
    return true
  }
}
