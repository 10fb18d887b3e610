import type { ValStat } from './incident.js'

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
