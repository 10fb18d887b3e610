// The messages of the detection plane, declared once: between the bridge
// (main thread) and a detection worker, and between a worker's engine and
// whoever drives it. The worker never imports the pool, and neither side
// imports engine.ts for a type.

import type { MessagePort } from 'node:worker_threads'
import type { ErrorCode } from '../../shared/errors.js'
import type { StateEvictions } from './budget.js'
import type { FindingEvent } from './finding.js'
import type { Ev } from './incident.js'
import type { ScanLimitName, ScanLimits } from './columns.js'
import type { CaptionSpec } from './rules/captions.js'
import type { RuleTiming } from './rules/compile.js'
import type { SigmaDoc } from './rules/types.js'
import type { InstanceFloor, InstanceStats } from './seq.js'

/** One batch of one host, as the engine takes it. */
export interface BatchInput {
  hostId: string
  hostname?: string
  /** the agent instance (one seq stream); absent or '': an agent from before instance ids */
  instance?: string
  seq: number
  count: number
  bytes: Uint8Array
  /** the lean form's context (shared/ocsf/lean.ts): absent or empty for full-form records */
  context?: Uint8Array
  /** wall time the collector received the batch */
  recvAt: number
  /** the host's dedup floors, per instance, as the store has them: sent when the worker may hold no actor for the host */
  floors?: InstanceFloor[]
}

/**
 * Why the detection plane refused a batch: a limit its scan enforces, bytes
 * that are not a batch of records, a record whose values mean nothing, a
 * record of another host, or a failure inside the worker. The collector
 * turns the reason into a gRPC status.
 */
export type DetectionRefusalReason = ScanLimitName | 'decode' | 'invalid_record' | 'host_id' | 'internal'

export interface Refusal { status: 'refused', reason: DetectionRefusalReason, error: ErrorCode, message: string }

/** What became of a batch the detection plane ran. */
export type BatchOutcome =
  | { status: 'accepted', records: number }
  | { status: 'duplicate' }
  | Refusal

/** A (group, value) sighting the fleet stage aggregates across workers. */
export interface FleetDelta {
  rule: number
  group: Array<string | number>
  value: string | number
  host: string
  hostname: string | undefined
  first: number
  last: number
  count: number
  /** the first record, sent with the first report of the pair */
  ev: Ev | undefined
  recvAt: number
}

export interface HostSummary {
  hostId: string
  /** the dedup floor of each live instance of the host */
  floors: InstanceFloor[]
  records: number
  batches: number
  duplicates: number
  refused: number
  gapsSkipped: number
}

export interface EngineStats extends InstanceStats {
  /** hosts with an actor now */
  hosts: number
  /** actors let go: idle (the bridge forgot them) and holding no state */
  hostsAged: number
  batches: number
  records: number
  matched: number
  duplicates: number
  refused: number
  openIncidents: number
  groups: number
  stateOverflow: number
  findings: number
  /** estimated bytes of all correlation state (budget.ts says what is counted) */
  stateBytes: number
  /** the memory budget stateBytes is held under */
  budgetBytes: number
  /** state the budget evicted, by kind (cumulative) */
  evictions: StateEvictions
}

export interface WorkerInit {
  index: number
  docs: SigmaDoc[]
  files: string[]
  /** the captions the rules read, as the main thread found them (rules/captions.ts) */
  captions: CaptionSpec[]
  timing: RuleTiming
  limits: ScanLimits
  productVersion: string
  /** the memory budget of all correlation state on this worker, bytes */
  memoryBytes: number
  tickMs: number
  fleetRefreshMs: number
  /** the worker's end of its MessageChannel; everything travels over it */
  port: MessagePort
}

export type ToWorker =
  | {
    t: 'batch'
    id: number
    hostId: string
    hostname: string
    instance: string
    seq: number
    count: number
    /** transferred, not copied; the records are bytes [off, off + len), the context [ctxOff, ctxOff + ctxLen) */
    buf: ArrayBuffer
    off: number
    len: number
    ctxOff: number
    ctxLen: number
    recvAt: number
    /** set when the bridge (re)introduces the host to this worker: its persisted dedup floors, per instance */
    floors?: InstanceFloor[]
  }
  | { t: 'skip', hostId: string, instance: string, seq: number, floors?: InstanceFloor[] }
  /** hosts idle past the idle timeout: the bridge sends their floors with their next message */
  | { t: 'forget', hosts: string[] }
  | { t: 'ping', id: number }
  | { t: 'flush', id: number }
  | { t: 'stop' }

export interface WorkerStats extends EngineStats {
  /** event-loop delay p99 over the last interval, ms */
  loopDelayMs: number
  /** batches refused because the engine threw (a bug) */
  internalErrors: number
  /** the worker's V8 heap in use (live state plus garbage not yet collected), bytes */
  heapBytes: number
}

export type FromWorker =
  | { t: 'ready', index: number, rules: number, fields: number }
  | { t: 'done', id: number, outcome: BatchOutcome, findings: FindingEvent[] | undefined, fleet: FleetDelta[] | undefined, busyMs: number }
  | { t: 'emit', findings: FindingEvent[], fleet: FleetDelta[] }
  | { t: 'pong', id: number, stats: WorkerStats }
  | { t: 'flushed', id: number }
  | { t: 'summary', hosts: HostSummary[], stats: WorkerStats }
  | { t: 'fatal', message: string }
