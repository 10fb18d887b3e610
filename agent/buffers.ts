// Output buffers that travel main → decoder → main and are used again.
// A decoder task writes its batches into one; the spool cache holds views
// of it; once the cache lets go of every batch in it, it comes back here.
// Allocating multi-MiB buffers afresh for every batch costs page faults and
// external-memory garbage collections on both threads.

export class BufferPool {
  readonly #free: ArrayBuffer[] = []
  readonly #max: number
  readonly #maxBytes: number

  /** keep at most `max` free buffers, none larger than `maxBytes` */
  constructor (max: number, maxBytes: number) {
    this.#max = max
    this.#maxBytes = maxBytes
  }

  take (): ArrayBuffer | undefined {
    return this.#free.pop()
  }

  put (buf: ArrayBuffer): void {
    if (buf.byteLength === 0 || buf.byteLength > this.#maxBytes || this.#free.length >= this.#max) return
    this.#free.push(buf)
  }

  get size (): number {
    return this.#free.length
  }
}
