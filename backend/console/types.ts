// The console's wire contract: what the JSON API and the event stream send.
// Declared once here and imported (types only) by both the server
// (backend/console/*.ts) and the page (backend/console/page/src/*.ts), so
// this file must not import anything that needs Node.

import type { FindingChangeKind, HistoryEntry, HostRow, StoredFinding } from '../store/types.js'

// The enumerations (triage statuses, finding states, drop causes) come from
// shared/enums.ts, and the rows from the store's own shapes: each is written
// once, and a field the store adds reaches the API's type with it.

/**
 * One finding as the findings table shows it (GET /api/findings, SSE
 * `finding`): the stored finding without its OCSF document, and its hosts
 * and sources cut to ROW_LIST_CAP (hostsCount and sourcesCount count all).
 */
export interface FindingRow extends Omit<StoredFinding, 'finding'> {
  /** the OCSF finding's message: one sentence saying who, what, how much */
  message: string
  /** what kind of finding, from finding_info.types (Port Scan, Horizontal Sweep, ...) */
  findingType: string
  techniqueName: string
  tacticName: string
  hostname: string | null
  /** the event class the finding was raised from (finding_info.data_sources[0]): network_activity, process_activity, file_activity, dns_activity */
  dataSource: string
  /** a scan: a correlation over network records, which counts probed ports; only scans are shown with ports */
  scan: boolean
}

/** The matched rule as its file states it (backend/console/rule-info.ts); lists are capped at 20. */
export interface RuleInfo {
  id?: string
  name?: string
  title?: string
  author?: string
  level?: string
  status?: string
  date?: string
  modified?: string
  references: string[]
  falsepositives: string[]
}

export type HistoryItem = Omit<HistoryEntry, 'findingId'>

/** GET /api/findings/:id and PATCH /api/findings/:id */
export interface FindingDetail extends FindingRow {
  /** the full OCSF detection_finding (class 2004), evidences included */
  finding: Record<string, unknown>
  history: HistoryItem[]
  /** the rule's author, references and level from its file; null when the file is no longer there */
  ruleInfo: RuleInfo | null
}

export interface FindingList {
  items: FindingRow[]
  /** findings matching the filters, over every page */
  total: number
  /** pass as ?cursor= for the next page; absent on the last page */
  nextCursor?: string
  limit: number
}

export interface HostView extends HostRow {
  dropsTotal: number
  /** no batch for longer than staleAfterMs */
  stale: boolean
}

/** GET /api/hosts: one page, by host id */
export interface HostList {
  items: HostView[]
  /** hosts in the store, over every page */
  total: number
  /** of them, those with no batch for longer than staleAfterMs */
  stale: number
  /** pass as ?cursor= for the next page; absent on the last page */
  nextCursor?: string
  limit: number
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
export interface StreamHello {
  serverTime: number
  staleAfterMs: number
  keepAliveMs: number
  /** the analyst the stream's access token names, who triage changes are recorded under; null without a token (read only) */
  analyst: string | null
}
/** event `finding`, with `id: <changeSeq>` so a reconnect resumes (Last-Event-ID) */
export interface StreamFinding { kind: FindingChangeKind | 'replay', finding: FindingRow }
/** event `hosts`: the hosts whose counters changed */
export interface StreamHosts { serverTime: number, items: HostView[] }
/** event `ping`: the keep-alive, with the server's clock */
export interface StreamPing { serverTime: number }
/** event `resync`: too much was missed to replay; fetch the lists again */
export interface StreamResync { reason: string }

export const ROW_LIST_CAP = 20
