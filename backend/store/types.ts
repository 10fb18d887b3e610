import type { DropCounters, FindingState, TriageStatus } from '../../shared/enums.js'
import type { DetectionFinding } from '../../shared/ocsf/types.js'

// What the alert store hands out and takes in. Types only and no Node
// imports: the console's wire contract (backend/console/types.ts), which the
// page bundles too, derives its rows from these shapes.

export interface StoredFinding {
  id: string
  rule: string
  title: string
  technique: string
  tactic: string
  severityId: number
  severity: string
  /** triage status, set by people */
  status: TriageStatus
  /** incident state, set by the detection plane */
  state: FindingState
  /** the scanned host; null for fleet findings spanning hosts */
  hostId: string | null
  hosts: string[]
  hostsCount: number
  sources: string[]
  sourcesCount: number
  portCount: number
  records: number
  firstSeen: number
  lastSeen: number
  createdAt: number
  updatedAt: number
  closedAt: number | null
  /** monotonic change number; SSE clients resume with changesSince() */
  changeSeq: number
  /** the full OCSF detection_finding; status_id/status follow the triage status */
  finding: DetectionFinding
}

/** How a finding list can be ordered, newest first; each is an indexed column. */
export const FINDING_ORDERS = ['created', 'updated', 'last_seen'] as const
export type FindingOrder = typeof FINDING_ORDERS[number]

export interface FindingQuery {
  status?: TriageStatus | TriageStatus[]
  state?: FindingState
  host?: string
  source?: string
  technique?: string
  rule?: string
  /** findings active at or after this time (last_seen >= since), ms */
  since?: number
  /** findings active at or before this time (first_seen <= until), ms */
  until?: number
  /** case-insensitive substring of the title */
  q?: string
  order?: FindingOrder
  /** 1..500, default 50 */
  limit?: number
  /** nextCursor of the previous page */
  cursor?: string
}

export interface FindingPage { items: StoredFinding[], total: number, nextCursor: string | undefined }

/** A triage status change: who made it, and why. */
export interface TriageChange { status: TriageStatus, actor: string, note?: string }

export interface HistoryEntry {
  id: number
  findingId: string
  at: number
  actor: string
  from: TriageStatus | null
  to: TriageStatus
  note: string
}

export interface HostRow {
  hostId: string
  hostname: string
  agentVersion: string
  firstSeen: number
  lastSeen: number
  lastSeq: number
  records: number
  batches: number
  bytes: number
  recordsPerSec: number
  capturedTotal: number
  /** cumulative drop counters as the agent last reported them */
  drops: DropCounters
  refusedBatches: number
  duplicateBatches: number
}

export interface HostQuery {
  /** 1..500, default 100 */
  limit?: number
  /** nextCursor of the previous page */
  cursor?: string
  /** when set, the page counts the hosts whose last batch is older (stale) */
  staleBefore?: number
}

/** A page of hosts, by host id. */
export interface HostPage { items: HostRow[], total: number, stale: number | undefined, nextCursor: string | undefined }

/** One host's traffic since the previous flush (the collector accumulates it per batch). */
export interface HostDelta {
  hostId: string
  hostname?: string
  agentVersion?: string
  lastSeen: number
  records: number
  batches: number
  bytes: number
  recordsPerSec: number
  capturedTotal?: number
  drops?: Partial<DropCounters>
  refusedBatches: number
  duplicateBatches: number
}

export type FindingChangeKind = 'created' | 'updated' | 'closed' | 'triaged'
export interface FindingChange { kind: FindingChangeKind, finding: StoredFinding }

export interface StoreEvents {
  /** after the transaction that wrote it committed */
  finding: [FindingChange]
  hosts: [HostRow[]]
}

export interface StoreOptions {
  readonly?: boolean
  /**
   * Told when a listener throws on a change. The change is committed either
   * way and the other listeners still hear of it; without this the error is
   * reported as a process warning.
   */
  onListenerError?: (err: Error, event: keyof StoreEvents) => void
}
