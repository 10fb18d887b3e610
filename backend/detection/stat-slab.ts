import type { Ev, ValStat } from './incident.js'

// Per-value statistics (first seen, last seen, count) of many groups, in
// typed arrays: a value is a slot, a small integer. As objects each was a
// {first, last, count} plus two heap numbers (a millisecond Unix time is
// past V8's small-integer range), ~80 bytes; here it is 24, and its times are
// stored unboxed. Freed slots are reused; the arrays double when full.

const INITIAL = 256

export class StatSlab {
  first = new Float64Array(INITIAL)
  last = new Float64Array(INITIAL)
  count = new Float64Array(INITIAL)
  #free: number[] = []
  #top = 0
  #evidence: EvidenceSlab | undefined

  /** evidence records by slot, for the kinds that keep one per value; a released slot's goes with it */
  get evidence (): EvidenceSlab {
    this.#evidence ??= new EvidenceSlab()
    return this.#evidence
  }

  /** slots in use */
  get size (): number { return this.#top - this.#free.length }

  alloc (first: number, last: number, count: number): number {
    let i = this.#free.pop()
    if (i === undefined) {
      if (this.#top === this.first.length) this.#grow()
      i = this.#top++
    }
    this.first[i] = first
    this.last[i] = last
    this.count[i] = count
    return i
  }

  release (i: number): void {
    this.#evidence?.drop(i)
    this.#free.push(i)
  }

  /** Count `n` more at time `t`. */
  add (i: number, t: number, n: number): void {
    this.count[i] += n
    if (t > this.last[i]) this.last[i] = t
    if (t < this.first[i]) this.first[i] = t
  }

  /** The slot as an object, for what outlives it (an incident's seed). */
  stat (i: number): ValStat {
    return { first: this.first[i], last: this.last[i], count: this.count[i] }
  }

  #grow (): void {
    const n = this.first.length * 2
    for (const k of ['first', 'last', 'count'] as const) {
      const a = new Float64Array(n)
      a.set(this[k])
      this[k] = a
    }
  }
}

const NUMS = ['t', 'rt', 'dtype', 'sport', 'dport', 'act', 'proto', 'dir', 'cls'] as const
/** strings per slot: hostname, sip, dip, qname */
const STRS = 4

/**
 * Evidence records by slot (a StatSlab's): the one evidence record a group
 * keeps for a value it has not seen before, until it crosses. As objects
 * they were the bulk of a host's detection state (a plain object, its boxed
 * times and an array per group); here the numbers are one row of a typed
 * array and the strings four references.
 */
export class EvidenceSlab {
  #num = new Float64Array(INITIAL * NUMS.length)
  #has = new Uint8Array(INITIAL)
  /** hostname, sip, dip, qname by slot; kept dense (filled as it grows), never holey */
  readonly #str: Array<string | undefined> = new Array<string | undefined>(INITIAL * STRS).fill(undefined)

  put (i: number, e: Ev): void {
    if (i >= this.#has.length) this.#grow(i)
    const o = i * NUMS.length
    for (let k = 0; k < NUMS.length; k++) this.#num[o + k] = e[NUMS[k]]
    const s = i * STRS
    this.#str[s] = e.hostname
    this.#str[s + 1] = e.sip
    this.#str[s + 2] = e.dip
    this.#str[s + 3] = e.qname
    this.#has[i] = 1
  }

  has (i: number): boolean {
    return i < this.#has.length && this.#has[i] === 1
  }

  /** The record at slot `i`, of host `host`. */
  get (i: number, host: string): Ev {
    const n = this.#num
    const o = i * NUMS.length
    const s = i * STRS
    return {
      t: n[o], rt: n[o + 1], host, hostname: this.#str[s], dtype: n[o + 2], sip: this.#str[s + 1], sport: n[o + 3],
      dip: this.#str[s + 2], dport: n[o + 4], act: n[o + 5], proto: n[o + 6], dir: n[o + 7], cls: n[o + 8], qname: this.#str[s + 3],
    }
  }

  /** Forget slot `i` (its StatSlab slot was released). */
  drop (i: number): void {
    if (!this.has(i)) return
    this.#has[i] = 0
    this.#str.fill(undefined, i * STRS, (i + 1) * STRS)
  }

  #grow (i: number): void {
    let n = this.#has.length * 2
    while (n <= i) n *= 2
    const has = new Uint8Array(n)
    has.set(this.#has)
    this.#has = has
    const num = new Float64Array(n * NUMS.length)
    num.set(this.#num)
    this.#num = num
    for (let k = this.#str.length; k < n * STRS; k++) this.#str.push(undefined)
  }
}
