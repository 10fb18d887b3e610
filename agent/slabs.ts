import type { SlabPoolShape } from './protocol.js'

// A fixed pool of slabs in shared memory. The consumer thread takes a free
// slab, fills it and queues it; the main thread frees it once its batch is
// decoded. States live in an Int32Array so both sides change them with
// Atomics and no message: a starved consumer sleeps on the generation
// counter and wakes when any slab comes back.

export const SLAB_FREE = 0
export const SLAB_FILLING = 1
export const SLAB_QUEUED = 2

const GEN = 0

export class SlabPool {
  readonly data: SharedArrayBuffer
  readonly count: number
  readonly slabBytes: number
  readonly #stateBuf: SharedArrayBuffer
  readonly #state: Int32Array
  #hint = 0

  private constructor (shape: SlabPoolShape) {
    this.data = shape.data
    this.count = shape.count
    this.slabBytes = shape.slabBytes
    this.#stateBuf = shape.state
    this.#state = new Int32Array(shape.state)
  }

  static create (count: number, slabBytes: number): SlabPool {
    return new SlabPool({ data: new SharedArrayBuffer(count * slabBytes), state: new SharedArrayBuffer(4 * (count + 1)), count, slabBytes })
  }

  static attach (shape: SlabPoolShape): SlabPool {
    return new SlabPool(shape)
  }

  get shape (): SlabPoolShape {
    return { data: this.data, state: this.#stateBuf, count: this.count, slabBytes: this.slabBytes }
  }

  offsetOf (slab: number): number {
    return slab * this.slabBytes
  }

  /** Consumer: take a free slab (FREE → FILLING), or -1 if none is free. */
  acquire (): number {
    for (let k = 0; k < this.count; k++) {
      const i = (this.#hint + k) % this.count
      if (Atomics.compareExchange(this.#state, 1 + i, SLAB_FREE, SLAB_FILLING) === SLAB_FREE) {
        this.#hint = (i + 1) % this.count
        return i
      }
    }
    return -1
  }

  /** Consumer: the slab is handed to the decoders (FILLING → QUEUED). */
  queue (slab: number): void {
    Atomics.store(this.#state, 1 + slab, SLAB_QUEUED)
  }

  /** Consumer: give back a slab it took but did not fill. */
  giveBack (slab: number): void {
    this.release(slab)
  }

  /** Main: the slab's records are decoded; it may be filled again. */
  release (slab: number): void {
    Atomics.store(this.#state, 1 + slab, SLAB_FREE)
    Atomics.add(this.#state, GEN, 1)
    Atomics.notify(this.#state, GEN)
  }

  /** The generation counter: changes whenever a slab is released. */
  generation (): number {
    return Atomics.load(this.#state, GEN)
  }

  /** Consumer: sleep until a slab is released after generation `gen`, or the timeout. */
  waitFree (gen: number, timeoutMs: number): void {
    Atomics.wait(this.#state, GEN, gen, timeoutMs)
  }

  stateOf (slab: number): number {
    return Atomics.load(this.#state, 1 + slab)
  }

  free (): number {
    let n = 0
    for (let i = 0; i < this.count; i++) if (Atomics.load(this.#state, 1 + i) === SLAB_FREE) n++
    return n
  }
}
