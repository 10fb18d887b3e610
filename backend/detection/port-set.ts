import type { ValStat } from './incident.js'

// The distinct ports of an incident, bounded by construction: up to
// PORT_SAMPLE_FIRST ports kept with their stats (exact membership); past
// that, a 65,536-bit set says which ports were seen and the count stays
// exact, while per-port stats are kept only for the first PORT_SAMPLE_FIRST
// and the latest PORT_SAMPLE_LAST new ones. A value that is not an integer
// from 0 to 65535 is no port: it never enters, and is counted in `invalid`.

export const PORT_SAMPLE_FIRST = 1000
export const PORT_SAMPLE_LAST = 100
/** what a full set costs: the bitset, and the two samples at ~100 bytes an entry */
export const PORT_SET_MAX_BYTES = 8192 + (PORT_SAMPLE_FIRST + PORT_SAMPLE_LAST) * 100

export function isPort (p: unknown): p is number {
  return typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 65535
}

export class PortSet {
  /** distinct ports seen */
  count = 0
  /** observations of a value that is not a port */
  invalid = 0
  readonly #first = new Map<number, ValStat>()
  readonly #last = new Map<number, ValStat>()
  #bits: Uint32Array | undefined

  /** Count `n` sightings of `p` at time `t`; true when `p` is a port not seen before. */
  add (p: unknown, t: number, n: number): boolean {
    return this.#put(p, t, t, n)
  }

  /** Fold in a window's worth of sightings of `p`. */
  merge (p: unknown, s: ValStat): boolean {
    return this.#put(p, s.first, s.last, s.count)
  }

  has (p: number): boolean {
    if (!isPort(p)) return false
    if (this.#bits === undefined) return this.#first.has(p)
    return (this.#bits[p >>> 5] & (1 << (p & 31))) !== 0
  }

  /** The sampled ports with their stats, by port number. */
  list (): Array<[number, ValStat]> {
    return [...this.#first, ...this.#last].sort((a, b) => a[0] - b[0])
  }

  /** Estimated heap bytes (see budget.ts). */
  get bytes (): number {
    return (this.#bits !== undefined ? 8192 : 0) + (this.#first.size + this.#last.size) * 100
  }

  #put (p: unknown, first: number, last: number, n: number): boolean {
    if (!isPort(p)) { this.invalid += n; return false }
    const s = this.#first.get(p) ?? this.#last.get(p)
    if (s !== undefined) {
      s.count += n
      if (last > s.last) s.last = last
      if (first < s.first) s.first = first
      return false
    }
    if (this.#bits === undefined) {
      if (this.#first.size < PORT_SAMPLE_FIRST) {
        this.#first.set(p, { first, last, count: n })
        this.count++
        return true
      }
      this.#bits = new Uint32Array(2048)
      for (const q of this.#first.keys()) this.#bits[q >>> 5] |= 1 << (q & 31)
    }
    const bits = this.#bits
    const w = p >>> 5
    const m = 1 << (p & 31)
    const fresh = (bits[w] & m) === 0
    if (fresh) {
      bits[w] |= m
      this.count++
      if (this.#last.size >= PORT_SAMPLE_LAST) this.#last.delete(this.#last.keys().next().value as number)
      this.#last.set(p, { first, last, count: n })
    }
    return fresh
  }
}
