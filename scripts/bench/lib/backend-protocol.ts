import type { HealthReport } from '../../../backend/http.js'
import type { BackendOptions } from '../../../backend/server.js'

// The messages between a benchmark (or a test) and its backend child
// (backend-child.ts), declared once and imported by both sides.


export interface StoredLatency {
  rule: string
  host: string | null
  sources: string[]
  /** wall ms: the batch holding the crossing record reached the collector */
  crossRecvAt: number | null
  /** wall ms: the store's transaction holding the finding returned */
  storedAt: number
}

/** The child's one argument, as JSON. */
export interface ChildOptions {
  db: string
  workers?: number
  /** more startBackend() options, those that travel as JSON */
  backend?: Pick<BackendOptions, 'limits' | 'streams' | 'detectionMemory' | 'hostIdleMs' | 'timing' | 'tickMs' | 'rulesDir' | 'bridge' | 'partitions'>
  /** collector address (default 127.0.0.1:0); a restarted backend takes its predecessor's port */
  listen?: string
  /** serve /healthz and /metrics on a free loopback port */
  http?: boolean
  /** href of the detection worker module (a drill passes a wrapper that crashes) */
  detectionWorker?: string
}

export type ChildIn =
  | { t: 'mark' }
  | { t: 'elu' }
  | { t: 'flush' }
  | { t: 'mem' }
  | { t: 'findings' }
  | { t: 'metrics' }
  | { t: 'health' }
  | { t: 'stop' }

export type ChildOut =
  | { t: 'ready', address: string, workers: number, http?: string }
  | { t: 'findings', list: StoredLatency[] }
  | { t: 'marked' }
  | { t: 'elu', utilization: number, delayP99Ms: number, maxQueued: number }
  | { t: 'flushed' }
  | { t: 'mem', usage: NodeJS.MemoryUsage }
  | { t: 'allFindings', list: Array<{ rule: string, host: string | null, sources: string[] }> }
  | { t: 'metrics', text: string }
  | { t: 'health', report: HealthReport }
