// The enumerations more than one part of Picket names, each written once.
// No Node imports: the console page bundles this file too. The .proto, the
// store's SQL CHECKs and columns, the metrics and the console derive from
// these lists, and test/shared/enums.test.ts checks the .proto against them.

/** Why the agent could not deliver a record: every lost record is counted under exactly one cause. */
export const DROP_CAUSES = ['kernel_reserve', 'kernel_recursion', 'slab_starvation', 'spool_eviction', 'decode_error', 'refused'] as const
export type DropCause = typeof DROP_CAUSES[number]
export type DropCounters = Record<DropCause, number>

export function zeroDrops (): DropCounters {
  return { kernel_reserve: 0, kernel_recursion: 0, slab_starvation: 0, spool_eviction: 0, decode_error: 0, refused: 0 }
}

/** The status an Ack carries (collector.proto Ack.Status, by name). */
export const ACK_STATUSES = ['OK', 'DUPLICATE', 'REFUSED', 'RETRY'] as const
export type AckStatus = typeof ACK_STATUSES[number]

/** Triage status of a finding, set by people. */
export const TRIAGE_STATUSES = ['new', 'in_progress', 'resolved', 'false_positive'] as const
export type TriageStatus = typeof TRIAGE_STATUSES[number]

/** Triage status → OCSF detection_finding status_id / status. */
export const TRIAGE_OCSF: Readonly<Record<TriageStatus, { id: number, name: string }>> = {
  new: { id: 1, name: 'New' },
  in_progress: { id: 2, name: 'In Progress' },
  resolved: { id: 4, name: 'Resolved' },
  false_positive: { id: 3, name: 'Suppressed' },
}

/** Incident state of a finding, set by the detection plane. */
export const FINDING_STATES = ['open', 'closed'] as const
export type FindingState = typeof FINDING_STATES[number]

/** What happened to an incident in one finding event (OCSF activity Create, Update, Close). */
export const FINDING_ACTIVITIES = ['create', 'update', 'close'] as const
export type FindingActivity = typeof FINDING_ACTIVITIES[number]

/** SQL `CHECK (col IN (...))` text for one of the lists above. */
export function sqlIn (col: string, values: readonly string[]): string {
  return `CHECK (${col} IN (${values.map(v => `'${v.replace(/'/g, "''")}'`).join(', ')}))`
}
