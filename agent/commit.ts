import type { Logger } from '../shared/logger.js'
import type { OutputArena } from './arena.js'
import type { DecoderPool } from './decode-pool/pool.js'
import type { DropLedger } from './drops.js'
import type { DecodeOutput, DecodeTask, SlabDescriptor } from './protocol.js'
import type { Spool } from './ship/spool.js'

// Slabs go to the decoders in the order the consumers handed them on and
// come back in any order; their batches are committed to the spool in that
// order, so seq order is capture order within each ring. A slab decoded early waits in the reorder
// map for the ones before it. Each task is given a region of the output
// arena (arena.ts) to write into; the region is freed once the spool cache
// lets go of every batch in it.

export interface SlabCommitOptions {
  decoders: Pick<DecoderPool, 'decode'>
  spool: Spool
  drops: DropLedger
  log: Logger
  /** the slab's records are decoded or given up: the consumer may fill it again */
  release: (slab: number, ring: string) => void
  /** batches went into the spool */
  onCommit: () => void
  /** CLOCK_REALTIME - the records' boot clock now, in ns */
  bootToWallNs: () => number
  arena: OutputArena
}

export class SlabCommit {
  /** records taken from the rings, less those that only update the process table (forks) */
  captured = 0
  spooledRecords = 0
  spooledBatches = 0
  /** Date.now() when a batch last went into the spool */
  lastAppendAt = Date.now()
  readonly #o: SlabCommitOptions
  readonly #reorder = new Map<number, DecodeOutput | undefined>()
  #nextTicket = 0
  #nextCommit = 0
  #inFlight = 0
  #idleWaiters: Array<() => void> = []
  #appendErrorLogged = 0
  #decodeErrorLogged = 0

  constructor (o: SlabCommitOptions) {
    this.#o = o
  }

  /** Decoded slabs waiting for an earlier one before they can be committed. */
  get reorder (): number {
    return this.#reorder.size
  }

  /** Hand a filled slab to the decoders; its batches reach the spool in turn. */
  decode (d: SlabDescriptor): void {
    const ticket = this.#nextTicket++
    this.#inFlight++
    this.captured += d.records
    const task: DecodeTask = { ring: d.ring, offset: d.offset, bytes: d.bytes, records: d.records, bootToWallNs: this.#o.bootToWallNs() }
    const region = this.#o.arena.take()
    if (region !== undefined) task.region = region
    this.#o.decoders.decode(task).then(out => {
      this.#o.release(d.slab, d.ring)
      // the output did not fit its region and came in a buffer of its own
      if (region !== undefined && out.region === undefined) this.#o.arena.release(region)
      this.#complete(ticket, out)
    }, (err: Error) => {
      this.#o.release(d.slab, d.ring)
      if (region !== undefined) this.#o.arena.release(region)
      this.#o.drops.add('decode_error', d.records)
      this.#o.log.error({ err: err.message, records: d.records }, 'a slab failed to decode on every attempt; its records are dropped')
      this.#complete(ticket, undefined)
    })
  }

  /** Resolves once every slab handed in so far is committed (or given up). */
  async idle (): Promise<void> {
    if (this.#inFlight > 0) await new Promise<void>(resolve => this.#idleWaiters.push(resolve))
  }

  #complete (ticket: number, out: DecodeOutput | undefined): void {
    this.#reorder.set(ticket, out)
    while (this.#reorder.has(this.#nextCommit)) {
      const o = this.#reorder.get(this.#nextCommit)
      this.#reorder.delete(this.#nextCommit)
      this.#nextCommit++
      this.#commit(o)
    }
    if (--this.#inFlight === 0) {
      const w = this.#idleWaiters
      this.#idleWaiters = []
      for (const f of w) f()
    }
  }

  #commit (out: DecodeOutput | undefined): void {
    if (out === undefined) return
    const { spool, drops, log } = this.#o
    // a fork or a thread's exit lives on in the process table, not as a
    // record: it is not captured telemetry, so delivered + dropped = captured
    if (out.skipped !== undefined) this.captured -= out.skipped
    if (out.errors > 0) {
      drops.add('decode_error', out.errors)
      if (Date.now() - this.#decodeErrorLogged > 10_000) {
        this.#decodeErrorLogged = Date.now()
        log.warn({ errors: out.errors, firstError: out.firstError, totalSoFar: drops.counters.decode_error }, 'raw records failed to decode (logged at most every 10 s)')
      }
    }
    const { region } = out
    const bytes = region !== undefined ? this.#o.arena.view(region) : new Uint8Array(out.buffer ?? new ArrayBuffer(0))
    // the region is free again once the spool cache lets go of every batch in it
    let refs = out.batches.length
    const release = (): void => { if (--refs === 0 && region !== undefined) this.#o.arena.release(region) }
    if (refs === 0 && region !== undefined) this.#o.arena.release(region)
    for (const b of out.batches) {
      try {
        spool.append(bytes.subarray(b.offset, b.offset + b.length), b.count, Date.now(), { context: bytes.subarray(b.contextOffset, b.contextOffset + b.contextLength), crc: b.crc, release })
        this.lastAppendAt = Date.now()
        this.spooledBatches++
        this.spooledRecords += b.count
      } catch (err) {
        drops.add('spool_eviction', b.count)
        if (Date.now() - this.#appendErrorLogged > 10_000) { this.#appendErrorLogged = Date.now(); log.error({ err: (err as Error).message }, 'cannot spool a batch; its records are dropped') }
      }
    }
    this.#o.onCommit()
  }
}
