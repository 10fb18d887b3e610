import type { FindingEvent } from '../detection/finding.js'
import type { BatchOutcome, FleetDelta, HostSummary, WorkerStats } from '../detection/protocol.js'

// The one interface between the collector and the detection plane. The
// in-process worker pool (pool.ts) is the first implementation; a NATS
// JetStream one (publish, ack once stored, partitioned by host) slots in
// behind the same interface.

export interface BridgeBatch {
  hostId: string
  hostname: string
  /** the agent instance: dedup is per (hostId, instance, seq); '' for an agent from before instance ids */
  instance: string
  seq: number
  count: number
  records: Uint8Array
  /** the lean form's context (Batch.context): empty for full-form records */
  context: Uint8Array
  /**
   * The caller gives up `records.buffer` (and `context.buffer`): the bridge
   * may transfer (detach) it instead of copying. Set only when nothing else
   * can hold a view of it.
   */
  owned: boolean
  /** wall time the collector received the batch */
  recvAt: number
}

export type SubmitResult =
  | BatchOutcome
  /** not accepted now; the agent keeps the batch and resends it */
  | { status: 'retry', message: string }

export interface WorkerHealth {
  index: number
  alive: boolean
  threadId: number | undefined
  /** batches submitted and not yet answered */
  queued: number
  queuedBytes: number
  restarts: number
  lastError: string | undefined
  /** round trip of the health ping; undefined when it timed out */
  rttMs: number | undefined
  lastBatchAt: number | undefined
  /** hosts routed to the worker and not yet forgotten for being idle */
  hosts: number
  /** hosts forgotten for being idle (cumulative) */
  hostsForgotten: number
  stats: WorkerStats | undefined
}

/** Cheap synchronous view of one worker (no ping): for metrics. */
export interface WorkerSnapshot { index: number, alive: boolean, restarts: number, queued: number, hosts: number, hostsForgotten: number }

export interface BridgeHealth {
  kind: string
  /** the bridge target accepts batches (for the pool: at least one worker alive) */
  reachable: boolean
  /** every worker answered the ping */
  ok: boolean
  detail: string
  workers: WorkerHealth[]
}

/**
 * Where the detection plane's output goes (the main thread's fleet stage,
 * store and outputs). findings() and fleet() resolve once the findings they
 * caused are committed to the store, and never reject: a batch is acked only
 * then.
 */
export interface DetectionSink {
  findings: (events: FindingEvent[]) => Promise<void>
  fleet: (deltas: FleetDelta[]) => Promise<void>
  /** Resolves once every finding handed over so far is committed (what a DUPLICATE answer waits for). */
  settled: () => Promise<void>
  hosts: (summaries: HostSummary[], worker: number) => void
  /** each worker's counters, about once a second */
  stats: (worker: number, stats: WorkerStats) => void
}

export interface Bridge {
  readonly kind: string
  /** Check the target is reachable and every worker is alive. Throws PICKET_ERR_BRIDGE saying why not. */
  start: () => Promise<void>
  /** Resolves once the detection plane accepted (or refused) the batch and the findings it caused are stored; never rejects. */
  submit: (batch: BridgeBatch) => Promise<SubmitResult>
  health: (timeoutMs?: number) => Promise<BridgeHealth>
  /**
   * The collector refused (host_id, instance, seq) before the detection plane
   * saw it: let the dedup window move past it rather than wait for it. Fire
   * and forget.
   */
  skip: (hostId: string, instance: string, seq: number) => void
  /** Ask every worker to emit pending updates and fleet reports now. */
  flush: () => Promise<void>
  /** Batches submitted and not yet answered, per worker. */
  queueDepths: () => number[]
  /** Cheap synchronous view of the workers (no ping): for metrics. */
  snapshot: () => WorkerSnapshot[]
  close: () => Promise<void>
}
