// The messages between the bridge (main thread) and a detection worker,
// declared once and imported by both sides. The worker never imports the pool.

import type { MessagePort } from 'node:worker_threads'
import type { BatchOutcome, EngineStats, FleetDelta, HostSummary } from './engine.js'
import type { FindingEvent } from './finding.js'
import type { ScanLimits } from './projector.js'
import type { RuleTiming } from './rules/compile.js'
import type { SigmaDoc } from './rules/types.js'

export interface WorkerInit {
  index: number
  docs: SigmaDoc[]
  files: string[]
  timing: RuleTiming
  limits: ScanLimits
  productVersion: string
  /** dedup floors persisted by an earlier run, for the hosts this worker owns */
  seqs: Array<[string, number]>
  tickMs: number
  fleetRefreshMs: number
  /** the worker's end of its MessageChannel; everything travels over it */
  port: MessagePort
  /** how many times this worker slot was restarted before this start */
  generation: number
}

export type ToWorker =
  | {
    t: 'batch'
    id: number
    hostId: string
    hostname: string
    seq: number
    count: number
    /** transferred, not copied; the records are bytes [off, off + len) */
    buf: ArrayBuffer
    off: number
    len: number
    recvAt: number
  }
  | { t: 'skip', hostId: string, seq: number }
  | { t: 'ping', id: number }
  | { t: 'flush', id: number }
  | { t: 'stop' }

export interface WorkerStats extends EngineStats {
  /** event-loop delay p99 over the last interval, ms */
  loopDelayMs: number
  /** batches refused because the engine threw (a bug) */
  internalErrors: number
}

export type FromWorker =
  | { t: 'ready', index: number, rules: number, fields: number }
  | { t: 'done', id: number, outcome: BatchOutcome, findings: FindingEvent[] | undefined, fleet: FleetDelta[] | undefined, busyMs: number }
  | { t: 'emit', findings: FindingEvent[], fleet: FleetDelta[] }
  | { t: 'pong', id: number, stats: WorkerStats }
  | { t: 'flushed', id: number }
  | { t: 'summary', hosts: HostSummary[], stats: WorkerStats }
  | { t: 'fatal', message: string }
