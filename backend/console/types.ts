// The console's wire contract: what the JSON API and the event stream send.
// Declared once here and imported (types only) by both the server
// (backend/console/*.ts) and the page (backend/console/page/src/*.ts), so
// this file must not import anything that needs Node.

import { DROP_CAUSES, TRIAGE_STATUSES, type DropCause, type TriageStatus } from '../../shared/enums.js'

export const TRIAGE = TRIAGE_STATUSES
export type Triage = TriageStatus
export const DROP_CAUSE_NAMES = DROP_CAUSES
export type { DropCause }

/** One finding as the findings table shows it (GET /api/findings, SSE `finding`). */
export interface FindingRow {
  id: string
  rule: string
  title: string
  /** the OCSF finding's message: one sentence saying who, what, how much */
  message: string
  /** what kind of finding, from finding_info.types (Port Scan, Horizontal Sweep, ...) */
  findingType: string
  technique: string
  techniqueName: string
  tactic: string
  tacticName: string
  severityId: number
  severity: string
  status: Triage
  state: 'open' | 'closed'
  /** the scanned host; null for fleet findings that span hosts */
  hostId: string | null
  hostname: string | null
  /** up to ROW_LIST_CAP of them; hostsCount counts all */
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
  changeSeq: number
}

export interface HistoryItem {
  id: number
  at: number
  actor: string
  from: Triage | null
  to: Triage
  note: string
}

/** GET /api/findings/:id and PATCH /api/findings/:id */
export interface FindingDetail extends FindingRow {
  /** the full OCSF detection_finding (class 2004), evidences included */
  finding: Record<string, unknown>
  history: HistoryItem[]
}

export interface FindingList {
  items: FindingRow[]
  /** findings matching the filters, over every page */
  total: number
  /** pass as ?cursor= for the next page; absent on the last page */
  nextCursor?: string
  limit: number
}

export interface HostView {
  hostId: string
  hostname: string
  agentVersion: string
  firstSeen: number
  lastSeen: number
  lastSeq: number
  recordsPerSec: number
  records: number
  batches: number
  bytes: number
  capturedTotal: number
  drops: Record<DropCause, number>
  dropsTotal: number
  refusedBatches: number
  duplicateBatches: number
  /** no batch for longer than staleAfterMs */
  stale: boolean
}

export interface HostList {
  items: HostView[]
  serverTime: number
  staleAfterMs: number
}

/** A 400: every invalid field, each with what is wrong with it. */
export interface ValidationErrorBody {
  error: 'PICKET_ERR_VALIDATION'
  message: string
  fields: Array<{ field: string, in: 'query' | 'body' | 'params' | 'headers', message: string }>
}

export interface ErrorBody {
  error: string
  message: string
}

// Server-Sent Events on GET /api/stream. Each is `event: <name>` with JSON data.
export interface StreamHello { serverTime: number, staleAfterMs: number, keepAliveMs: number }
/** event `finding`, with `id: <changeSeq>` so a reconnect resumes (Last-Event-ID) */
export interface StreamFinding { kind: 'created' | 'updated' | 'closed' | 'triaged' | 'replay', finding: FindingRow }
/** event `hosts`: the hosts whose counters changed */
export interface StreamHosts { serverTime: number, items: HostView[] }
/** event `ping`: the keep-alive, with the server's clock */
export interface StreamPing { serverTime: number }
/** event `resync`: too much was missed to replay; fetch the lists again */
export interface StreamResync { reason: string }

export const ROW_LIST_CAP = 20
