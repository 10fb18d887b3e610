import type { Ack } from '../../shared/proto/index.js'

// What the shipper has sent on its current stream and not yet had acked, in
// send order, and the check each ack must pass against it: an ack frees a
// batch only when its host id, instance and seq name a batch sent on this
// stream and not acked yet. Anything else is not an answer from the collector
// we shipped to (a process that took its port, a proxy mixing streams up, a
// bug): taking it would drop spooled batches the collector never had.
//
// It also lends the memory each batch is encoded into (encode.ts), and takes
// it back once the batch is acked (grpc-js has framed and sent it by then) or
// its stream is gone: a fresh multi-100-KB buffer per batch is external
// memory that makes V8 collect the main thread's heap far more often.

export interface Sent { sentAt: number, count: number, bytes: number, /** the memory the batch was encoded into */ encoded?: Buffer }

/** Encode buffers kept for reuse at most, and their size granule. */
const SPARE_MAX = 8
const GRANULE = 64 << 10

export class InFlight {
  readonly #sent = new Map<number, Sent>()
  readonly #spare: Buffer[] = []
  #bytes = 0

  get size (): number { return this.#sent.size }
  get bytes (): number { return this.#bytes }

  has (seq: number): boolean {
    return this.#sent.has(seq)
  }

  add (seq: number, s: Sent): void {
    this.#sent.set(seq, s)
    this.#bytes += s.bytes
  }

  /** The batch `seq`, no longer in flight; its encode memory is free again. */
  take (seq: number): Sent | undefined {
    const s = this.#sent.get(seq)
    if (s !== undefined) {
      this.#sent.delete(seq)
      this.#bytes -= s.bytes
      this.#recycle(s)
    }
    return s
  }

  /** Memory to encode a batch of `size` bytes into: a spare buffer big enough, or a new one. */
  encodeBuffer (size: number): Buffer {
    for (let i = 0; i < this.#spare.length; i++) {
      const b = this.#spare[i]
      if (b.length >= size) {
        this.#spare[i] = this.#spare[this.#spare.length - 1]
        this.#spare.pop()
        return b
      }
    }
    return Buffer.allocUnsafeSlow(Math.ceil(size / GRANULE) * GRANULE)
  }

  #recycle (s: Sent): void {
    if (s.encoded === undefined) return
    if (this.#spare.length < SPARE_MAX) this.#spare.push(s.encoded)
    s.encoded = undefined
  }

  /** The batch sent longest ago. */
  oldest (): Sent | undefined {
    return this.#sent.values().next().value
  }

  /** Forget every batch in flight: its stream is gone, and with it grpc-js's use of their encode memory. */
  clear (): void {
    for (const s of this.#sent.values()) this.#recycle(s)
    this.#sent.clear()
    this.#bytes = 0
  }

  /** What is wrong with `ack` as an answer to a batch in flight; undefined when nothing is. */
  mismatch (ack: Ack, hostId: string, instance: string): string | undefined {
    if (ack.host_id !== hostId) return `it is for host '${String(ack.host_id).slice(0, 64)}', not this agent's '${hostId}'`
    if ((ack.instance ?? '') !== instance) return `it is for instance '${String(ack.instance).slice(0, 64)}', not this agent's '${instance}' (a collector older than this agent does not echo the instance: upgrade the backend first)`
    const seq = Number(ack.seq)
    if (!this.#sent.has(seq)) return `seq ${seq} is not in flight on this stream (never sent on it, or acked already)`
    return undefined
  }
}
