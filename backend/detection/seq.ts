// Duplicate detection by (host_id, seq) in bounded memory: everything at or
// below `floor` has been seen, plus a small set of seqs above it that arrived
// out of order. Agents keep a bounded window of batches in flight, so the set
// stays small; if it ever outgrows `maxAhead`, the floor jumps to the oldest
// seq in it and the holes below are given up (counted in `gapsSkipped`): a
// batch that first arrives after that is wrongly taken for a duplicate, which
// is the price of bounded memory.

export class SeqWindow {
  floor: number
  readonly #above = new Set<number>()
  readonly #maxAhead: number
  gapsSkipped = 0

  constructor (floor = 0, maxAhead = 4096) {
    this.floor = floor
    this.#maxAhead = maxAhead
  }

  /** True when `seq` is new (and records it); false for a duplicate. */
  accept (seq: number): boolean {
    if (seq <= this.floor || this.#above.has(seq)) return false
    if (seq === this.floor + 1) {
      this.floor = seq
      while (this.#above.delete(this.floor + 1)) this.floor++
      return true
    }
    this.#above.add(seq)
    if (this.#above.size > this.#maxAhead) {
      let min = Infinity
      for (const s of this.#above) if (s < min) min = s
      this.gapsSkipped += min - this.floor - 1
      this.#above.delete(min)
      this.floor = min
      while (this.#above.delete(this.floor + 1)) this.floor++
    }
    return true
  }

  get pending (): number {
    return this.#above.size
  }
}
