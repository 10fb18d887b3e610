import type { ArenaShape } from './protocol.js'

// The decoders' output arena: one SharedArrayBuffer cut into regions, one per
// decode task in flight. A decoder writes a slab's batches straight into the
// region it is given; the main thread spools and ships them from there and
// frees the region once the spool cache lets go of every batch in it.
// Nothing is transferred and nothing is allocated per batch: a buffer
// transferred to the main thread counts there as fresh external memory every
// time it arrives, and that drove V8 to a full garbage collection every
// ~120 ms (BENCHMARKS.md, agent-pipeline). Main thread only.

export class OutputArena {
  readonly data: SharedArrayBuffer
  readonly regionBytes: number
  readonly #free: number[]

  constructor (regions: number, regionBytes: number) {
    this.data = new SharedArrayBuffer(regions * regionBytes)
    this.regionBytes = regionBytes
    this.#free = Array.from({ length: regions }, (_, i) => regions - 1 - i)
  }

  get shape (): ArenaShape {
    return { data: this.data, regionBytes: this.regionBytes }
  }

  /** A free region, or undefined when every one holds batches still in use (the decoder then allocates). */
  take (): number | undefined {
    return this.#free.pop()
  }

  release (region: number): void {
    this.#free.push(region)
  }

  /** Region `region`'s memory. */
  view (region: number): Uint8Array {
    return new Uint8Array(this.data, region * this.regionBytes, this.regionBytes)
  }

  get freeRegions (): number {
    return this.#free.length
  }
}
