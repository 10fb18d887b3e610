import type { HealthReport } from '../../../backend/http.js'
import type { BackendOptions } from '../../../backend/server.js'

// The messages between a benchmark (or a test) and its backend child
// (backend-child.ts), declared once and imported by both sides.

/** What the child is started with (JSON on its argv). */
export interface ChildOptions {
  db: string
  workers?: number
  /** more startBackend() options, those that travel as JSON */
  backend?: Pick<BackendOptions, 'limits' | 'streams' | 'detectionMemory' | 'hostIdleMs' | 'timing' | 'tickMs' | 'rulesDir'>
}

export interface StoredLatency {
  rule: string
  host: string | null
  sources: string[]
  /** wall ms: the batch holding the crossing record reached the collector */
  crossRecvAt: number | null
  /** wall ms: the store's transaction holding the finding returned */
  storedAt: number
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
  | { t: 'ready', address: string, workers: number }
  | { t: 'findings', list: StoredLatency[] }
  | { t: 'marked' }
  | { t: 'elu', utilization: number, delayP99Ms: number, maxQueued: number }
  | { t: 'flushed' }
  | { t: 'mem', usage: NodeJS.MemoryUsage }
  | { t: 'allFindings', list: Array<{ rule: string, host: string | null, sources: string[] }> }
  | { t: 'metrics', text: string }
  | { t: 'health', report: HealthReport }
