// sfc32: a small, fast, seedable PRNG. The same seed gives the same records
// on every machine and every run.

export class Prng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor (seed: number) {
    this.#a = 0x9e3779b9
    this.#b = 0x243f6a88
    this.#c = 0xb7e15162
    this.#d = seed >>> 0
    for (let i = 0; i < 15; i++) this.next()
  }

  /** uniform in [0, 2^32) */
  next (): number {
    const t = (((this.#a + this.#b) | 0) + this.#d) | 0
    this.#d = (this.#d + 1) | 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) | 0
    this.#c = (this.#c << 21) | (this.#c >>> 11)
    this.#c = (this.#c + t) | 0
    return t >>> 0
  }

  /** integer in [0, n) */
  int (n: number): number {
    return Math.floor((this.next() / 4294967296) * n)
  }

  pick<T> (xs: readonly T[]): T {
    return xs[this.int(xs.length)]
  }

  /** `k` distinct integers from [lo, hi], in random order */
  sample (lo: number, hi: number, k: number): number[] {
    const n = hi - lo + 1
    if (k > n) throw new RangeError(`cannot pick ${k} distinct values from ${n}`)
    const swapped = new Map<number, number>()
    const out: number[] = []
    for (let i = 0; i < k; i++) {
      const j = i + this.int(n - i)
      const vj = swapped.get(j) ?? j
      const vi = swapped.get(i) ?? i
      swapped.set(j, vi)
      out.push(lo + vj)
    }
    return out
  }
}
