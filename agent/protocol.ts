// The messages between the agent's main thread and its workers, declared
// once: consumer threads (one per ring buffer) and decoder workers (piscina).
// Worker entry files import this module and never the pools that run them.

import type { MessagePort } from 'node:worker_threads'
import type { KernelCounters } from '../bpf/types.js'
import type { SourceInfo } from '../shared/ocsf/network.js'
import type { ProcTableShape } from './proctable/table.js'
import type { SynthOptions } from './source/synth.js'

// ---------------------------------------------------------------------------
// Slabs: one SharedArrayBuffer per ring holds `count` slabs of `slabBytes`;
// a second, small one holds their states (see slabs.ts).

export interface SlabPoolShape {
  /** the slab memory: slab i is [i * slabBytes, (i + 1) * slabBytes) */
  data: SharedArrayBuffer
  /** Int32Array: [0] free generation counter, [1 + i] state of slab i */
  state: SharedArrayBuffer
  count: number
  slabBytes: number
}

/** Where a consumer reads records from. */
export type SourceSpec =
  | { kind: 'ring', /** the ring buffer map fd from NetProbe.ringFd */ fd: number }
  | { kind: 'synth', synth: SynthOptions }

export interface ConsumerTuning {
  /** hand a slab that holds records to the decoders after this long, full or not */
  lingerMs: number
  /** longest single wait in the ring's drain call */
  drainTimeoutMs: number
}

export interface ConsumerInit {
  /** ring name: 'net', 'proc', 'file' */
  ring: string
  source: SourceSpec
  slabs: SlabPoolShape
  tuning: ConsumerTuning
  /** the largest record the ring can hold: a slab with less room left is handed off */
  maxRecordBytes: number
  /** comlink endpoint for ConsumerApi */
  control: MessagePort
  /** the process ring only: the table it writes (agent/proctable), seeded from /proc before the first drain */
  procTable?: ProcTableShape
}

/** Consumer → main, on the worker's parentPort: a slab is ready to decode. */
export interface SlabDescriptor {
  ring: string
  slab: number
  /** byte offset of the records in the ring's slab SharedArrayBuffer */
  offset: number
  bytes: number
  records: number
}

export interface ConsumerStats {
  ring: string
  drainCalls: number
  /** records and bytes copied out of the ring */
  records: number
  bytes: number
  slabsHandedOff: number
  /** times the consumer found no free slab, and the time it spent waiting */
  starvationEvents: number
  starvationMs: number
  /** waiting for a free slab right now */
  starved: boolean
  freeSlabs: number
  /** bytes waiting in the ring */
  ringPendingBytes: number
  /** synthetic source only: its kernel-shaped counters */
  synthCounters?: KernelCounters
  synth?: { emitted: number, dropped: number, firstId: number, nextId: number, exhausted: boolean }
  stopped: boolean
}

/** Main → consumer over comlink. */
export interface ConsumerApi {
  stats: () => ConsumerStats
  reconfigure: (tuning: Partial<ConsumerTuning>) => ConsumerTuning
  /**
   * Drain what is waiting in the ring now (up to `timeoutMs`), hand off the
   * last partial slab, and stop. Resolves with the final stats.
   */
  stop: (timeoutMs: number) => Promise<ConsumerStats>
}

// ---------------------------------------------------------------------------
// Decoders.

/** The output arena (arena.ts): region i is [i * regionBytes, (i + 1) * regionBytes) of data. */
export interface ArenaShape {
  data: SharedArrayBuffer
  regionBytes: number
}

export interface DecoderWorkerData {
  /** slab memory by ring name */
  rings: Record<string, SharedArrayBuffer>
  /** where tasks given a region write their output */
  arena: ArenaShape
  source: SourceInfo
  rstReasons: Record<number, string>
  noSocketReason: number
  /** split a slab's output into several batches above this many bytes */
  maxBatchBytes: number
  /** keep raw kernel fields under `unmapped` */
  unmapped: boolean
  /** the process table the normalisers read (absent: no process ring) */
  procTable?: ProcTableShape
  /** the ring whose consumer writes it: its slabs need not wait for the table */
  procRing?: string
  /** answer address → name (normalize/dns-names.ts), written by DNS answers, read by network records (absent: no dns ring) */
  names?: SharedArrayBuffer
}

export interface DecodeTask {
  ring: string
  offset: number
  bytes: number
  records: number
  /** CLOCK_REALTIME - CLOCK_BOOTTIME now, in ns (it drifts: sent per task) */
  bootToWallNs: number
  /**
   * The arena region to write the output into; without one (every region
   * is in use) the worker writes into memory of its own and transfers it.
   */
  region?: number
}

export interface DecodedBatch {
  /** where the batch's msgpack array of lean OCSF records lies in DecodeOutput.buffer */
  offset: number
  length: number
  /** and its context (collector.proto Batch.context): with it, the batch decodes on its own */
  contextOffset: number
  contextLength: number
  count: number
  /** crc32 of the context then the records, computed here so the main thread does not have to */
  crc: number
}

export interface DecodeOutput {
  /** the arena region the batches' records and contexts lie in, back to back: the task's own */
  region?: number
  /** or, when the task had no region or its output did not fit in it, a buffer of their own */
  buffer?: ArrayBuffer
  batches: DecodedBatch[]
  /** OCSF records in the batches */
  records: number
  /** raw records that could not be decoded */
  errors: number
  /** raw records read on purpose without a record of their own (a fork: the process table has it) */
  skipped?: number
  firstError?: string
}
