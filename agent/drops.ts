import type { DropCounters } from '../shared/proto/index.js'

// The agent's drop ledger: every record it could not deliver, counted under
// exactly one cause, cumulative since start (the counters every Batch carries).
//
// Ring reservation failures are counted by the kernel. While a consumer has
// no free slab it stops draining, and the failures that follow are the
// agent's doing, not the kernel's: failures that appear in a poll interval
// during which a consumer was starved are booked as slab_starvation, the
// others as kernel_reserve. The sum of the two is always the kernel's count.

export class DropLedger {
  readonly #c: DropCounters = { kernel_reserve: 0, kernel_recursion: 0, slab_starvation: 0, spool_eviction: 0, decode_error: 0, refused: 0 }
  #kernelReserveSeen = 0

  /**
   * Book the kernel's cumulative reservation failures and recursion misses.
   * `starved`: a consumer was out of slabs at some point since the last call.
   */
  kernel (reserveFailedTotal: number, recursionMissesTotal: number, starved: boolean): void {
    const delta = reserveFailedTotal - this.#kernelReserveSeen
    if (delta > 0) {
      if (starved) this.#c.slab_starvation += delta
      else this.#c.kernel_reserve += delta
      this.#kernelReserveSeen = reserveFailedTotal
    }
    if (recursionMissesTotal > this.#c.kernel_recursion) this.#c.kernel_recursion = recursionMissesTotal
  }

  add (cause: 'spool_eviction' | 'decode_error' | 'refused', records: number): void {
    this.#c[cause] += records
  }

  get counters (): DropCounters {
    return { ...this.#c }
  }

  get total (): number {
    const c = this.#c
    return c.kernel_reserve + c.kernel_recursion + c.slab_starvation + c.spool_eviction + c.decode_error + c.refused
  }
}
