import { TRIAGE_OCSF, TRIAGE_STATUSES, type TriageStatus } from '../../shared/enums.js'
import { PicketError } from '../../shared/errors.js'
import type { DetectionFinding } from '../../shared/ocsf/types.js'
import { StorePart, type StoreDb } from './db.js'
import type { HistoryEntry, TriageChange } from './types.js'

// Triage: the status people give a finding, and the history of who changed
// it, when, from what, to what and why. The OCSF status_id in the stored
// JSON follows the triage status.

export function withTriage (finding: DetectionFinding, status: TriageStatus): DetectionFinding {
  const s = TRIAGE_OCSF[status]
  return { ...finding, status_id: s.id, status: s.name }
}

export function assertTriageStatus (status: unknown): asserts status is TriageStatus {
  if (!TRIAGE_STATUSES.includes(status as TriageStatus)) {
    throw new PicketError('PICKET_ERR_VALIDATION', `status '${String(status)}' is not one of ${TRIAGE_STATUSES.join(', ')}`)
  }
}

function prepareWrites (sql: StoreDb['sql']) {
  return {
    current: sql.prepare('SELECT status, finding FROM findings WHERE id = ?'),
    set: sql.prepare('UPDATE findings SET status = ?, updated_at = ?, change_seq = ?, finding = ? WHERE id = ?'),
    history: sql.prepare('INSERT INTO finding_history (finding_id, at, actor, from_status, to_status, note) VALUES (?, ?, ?, ?, ?, ?)'),
  }
}

export class Triage extends StorePart<ReturnType<typeof prepareWrites>> {
  constructor (db: StoreDb) {
    super(db, prepareWrites)
  }

  /** One history line; the caller's transaction holds it together with the change it records. */
  note (id: string, at: number, actor: string, from: TriageStatus | null, to: TriageStatus, note: string): void {
    this.writes().history.run(id, at, actor, from, to, note)
  }

  /** Set the triage status in one transaction with its history line; `nextSeq` numbers the change. */
  setStatus (id: string, change: TriageChange, now: number, nextSeq: () => number): void {
    const st = this.writes()
    assertTriageStatus(change.status)
    if (typeof change.actor !== 'string' || change.actor.trim() === '') throw new PicketError('PICKET_ERR_VALIDATION', 'actor must name who changed the status')
    const note = change.note ?? ''
    this.db.sql.transaction(() => {
      const r = st.current.get(id) as { status: TriageStatus, finding: string } | undefined
      if (r === undefined) throw new PicketError('PICKET_ERR_NOT_FOUND', `no finding has id ${id}`)
      const finding = withTriage(JSON.parse(r.finding) as DetectionFinding, change.status)
      st.set.run(change.status, now, nextSeq(), JSON.stringify(finding), id)
      st.history.run(id, now, change.actor, r.status, change.status, note)
    })()
  }

  history (id: string): HistoryEntry[] {
    const rows = this.db.sql.prepare('SELECT id, finding_id, at, actor, from_status, to_status, note FROM finding_history WHERE finding_id = ? ORDER BY at, id').all(id) as Array<{
      id: number, finding_id: string, at: number, actor: string, from_status: TriageStatus | null, to_status: TriageStatus, note: string
    }>
    return rows.map(r => ({ id: r.id, findingId: r.finding_id, at: r.at, actor: r.actor, from: r.from_status, to: r.to_status, note: r.note }))
  }
}
