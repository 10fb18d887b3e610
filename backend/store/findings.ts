import type { FindingState, TriageStatus } from '../../shared/enums.js'
import { PicketError } from '../../shared/errors.js'
import { SEVERITY_NAME } from '../../shared/ocsf/constants.js'
import type { DetectionFinding } from '../../shared/ocsf/types.js'
import { closedFinding, type FindingEvent } from '../detection/finding.js'
import { StorePart, type StoreDb } from './db.js'
import { assertTriageStatus, withTriage, type Triage } from './triage.js'
import { FINDING_ORDERS, type FindingChangeKind, type FindingOrder, type FindingPage, type FindingQuery, type StoredFinding } from './types.js'

// The findings table: each incident is one row, written by its Create,
// Updates and Close, with its full OCSF JSON beside the columns the
// console filters on. Every write takes a new change number, which is how a
// live client that reconnects finds what it missed.

interface FindingDbRow {
  id: string
  rule: string
  title: string
  technique: string
  tactic: string
  severity_id: number
  status: TriageStatus
  state: FindingState
  host_id: string | null
  hosts_count: number
  sources: string
  sources_count: number
  port_count: number
  records: number
  first_seen: number
  last_seen: number
  created_at: number
  updated_at: number
  closed_at: number | null
  change_seq: number
  finding: string
}

const ORDER_COL: Readonly<Record<FindingOrder, keyof FindingDbRow>> = { created: 'created_at', updated: 'updated_at', last_seen: 'last_seen' }

/** Why closeOrphans() closed a finding (unmapped.picket.closed_by). */
const ORPHAN_CLOSER = 'backend restart'

function prepareWrites (sql: StoreDb['sql']) {
  return {
    insert: sql.prepare(`INSERT INTO findings (id, rule, title, technique, tactic, severity_id, status, state, host_id, hosts_count, sources, sources_count, port_count, records, first_seen, last_seen, created_at, updated_at, closed_at, change_seq, finding)
      VALUES (@id, @rule, @title, @technique, @tactic, @severity_id, 'new', @state, @host_id, @hosts_count, @sources, @sources_count, @port_count, @records, @first_seen, @last_seen, @now, @now, @closed_at, @change_seq, @finding)`),
    update: sql.prepare(`UPDATE findings SET title = @title, severity_id = @severity_id, state = @state, hosts_count = @hosts_count, sources = @sources, sources_count = @sources_count,
      port_count = @port_count, records = @records, first_seen = @first_seen, last_seen = @last_seen, updated_at = @now, closed_at = @closed_at, change_seq = @change_seq, finding = @finding WHERE id = @id`),
    status: sql.prepare('SELECT status FROM findings WHERE id = ?'),
    host: sql.prepare('INSERT OR IGNORE INTO finding_hosts (finding_id, host_id) VALUES (?, ?)'),
    source: sql.prepare('INSERT OR IGNORE INTO finding_sources (finding_id, ip) VALUES (?, ?)'),
    open: sql.prepare("SELECT id, finding FROM findings WHERE state = 'open'"),
    close: sql.prepare("UPDATE findings SET state = 'closed', closed_at = ?, updated_at = ?, change_seq = ?, finding = ? WHERE id = ?"),
  }
}

export class Findings extends StorePart<ReturnType<typeof prepareWrites>> {
  readonly #triage: Triage

  constructor (db: StoreDb, triage: Triage) {
    super(db, prepareWrites)
    this.#triage = triage
  }

  /** The highest change number written so far (0 for a new store). */
  lastChangeSeq (): number {
    return (this.db.sql.prepare('SELECT max(change_seq) AS m FROM findings').get() as { m: number | null }).m ?? 0
  }

  #stored (r: FindingDbRow): StoredFinding {
    return {
      id: r.id,
      rule: r.rule,
      title: r.title,
      technique: r.technique,
      tactic: r.tactic,
      severityId: r.severity_id,
      severity: SEVERITY_NAME[r.severity_id] ?? 'Unknown',
      status: r.status,
      state: r.state,
      hostId: r.host_id,
      hosts: (this.db.sql.prepare('SELECT host_id FROM finding_hosts WHERE finding_id = ? ORDER BY host_id LIMIT 1000').all(r.id) as Array<{ host_id: string }>).map(x => x.host_id),
      hostsCount: r.hosts_count,
      sources: JSON.parse(r.sources) as string[],
      sourcesCount: r.sources_count,
      portCount: r.port_count,
      records: r.records,
      firstSeen: r.first_seen,
      lastSeen: r.last_seen,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      closedAt: r.closed_at,
      changeSeq: r.change_seq,
      finding: JSON.parse(r.finding) as DetectionFinding,
    }
  }

  /** Write finding events (Create / Update / Close) in one transaction; what changed, in order. */
  apply (events: readonly FindingEvent[], now: number, nextSeq: () => number): Array<{ kind: FindingChangeKind, id: string }> {
    const st = this.writes()
    const changed: Array<{ kind: FindingChangeKind, id: string }> = []
    this.db.sql.transaction(() => {
      for (const ev of events) {
        const s = ev.summary
        const cur = st.status.get(s.id) as { status: TriageStatus } | undefined
        const status = cur?.status ?? 'new'
        const state: FindingState = ev.activity === 'close' ? 'closed' : 'open'
        const params = {
          id: s.id,
          rule: s.rule,
          title: s.title,
          technique: s.technique,
          tactic: s.tactic,
          severity_id: s.severityId,
          state,
          host_id: s.hostId ?? null,
          hosts_count: s.hostsTotal,
          sources: JSON.stringify(s.sources.slice(0, 50)),
          sources_count: s.sourcesTotal,
          port_count: s.portCount,
          records: s.records,
          first_seen: s.firstSeen,
          last_seen: s.lastSeen,
          now,
          closed_at: state === 'closed' ? now : null,
          change_seq: nextSeq(),
          finding: JSON.stringify(withTriage(ev.finding, status)),
        }
        if (cur === undefined) {
          st.insert.run(params)
          this.#triage.note(s.id, now, 'picket', null, 'new', `raised by rule ${s.rule}`)
          changed.push({ kind: state === 'closed' ? 'closed' : 'created', id: s.id })
        } else {
          st.update.run(params)
          changed.push({ kind: state === 'closed' ? 'closed' : 'updated', id: s.id })
        }
        for (const h of s.hosts) st.host.run(s.id, h)
        for (const ip of s.sources) st.source.run(s.id, ip)
      }
    })()
    return changed
  }

  /**
   * Close the findings a previous run left open. Sliding windows are not
   * persisted, so after a restart an ongoing scan opens a new incident; the
   * old one would otherwise stay open for ever. Returns the ids it closed.
   */
  closeOrphans (now: number, nextSeq: () => number): string[] {
    const st = this.writes()
    const open = st.open.all() as Array<{ id: string, finding: string }>
    if (open.length === 0) return []
    this.db.sql.transaction(() => {
      for (const r of open) {
        const finding = closedFinding(JSON.parse(r.finding) as DetectionFinding, now, ORPHAN_CLOSER)
        st.close.run(now, now, nextSeq(), JSON.stringify(finding), r.id)
      }
    })()
    return open.map(r => r.id)
  }

  get (id: string): StoredFinding | undefined {
    const r = this.db.sql.prepare('SELECT * FROM findings WHERE id = ?').get(id) as FindingDbRow | undefined
    return r === undefined ? undefined : this.#stored(r)
  }

  list (q: FindingQuery = {}): FindingPage {
    const where: string[] = []
    const args: unknown[] = []
    if (q.status !== undefined) {
      const list = Array.isArray(q.status) ? q.status : [q.status]
      for (const s of list) assertTriageStatus(s)
      if (list.length > 0) { where.push(`status IN (${list.map(() => '?').join(', ')})`); args.push(...list) }
    }
    if (q.state !== undefined) { where.push('state = ?'); args.push(q.state) }
    if (q.host !== undefined) { where.push('id IN (SELECT finding_id FROM finding_hosts WHERE host_id = ?)'); args.push(q.host) }
    if (q.source !== undefined) { where.push('id IN (SELECT finding_id FROM finding_sources WHERE ip = ?)'); args.push(q.source) }
    if (q.technique !== undefined) { where.push('technique = ?'); args.push(q.technique) }
    if (q.rule !== undefined) { where.push('rule = ?'); args.push(q.rule) }
    if (q.since !== undefined) { where.push('last_seen >= ?'); args.push(q.since) }
    if (q.until !== undefined) { where.push('first_seen <= ?'); args.push(q.until) }
    if (q.q !== undefined && q.q !== '') { where.push("title LIKE ? ESCAPE '\\'"); args.push('%' + q.q.replace(/[\\%_]/g, m => '\\' + m) + '%') }
    const order = q.order ?? 'created'
    const col = ORDER_COL[order]
    if (col === undefined) throw new PicketError('PICKET_ERR_VALIDATION', `order '${String(order)}' is not one of ${FINDING_ORDERS.join(', ')}`)
    const limit = q.limit ?? 50
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new PicketError('PICKET_ERR_VALIDATION', 'limit must be an integer from 1 to 500')
    const base = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const total = (this.db.sql.prepare(`SELECT count(*) AS n FROM findings ${base}`).get(...args) as { n: number }).n
    const pageWhere = [...where]
    const pageArgs = [...args]
    if (q.cursor !== undefined && q.cursor !== '') {
      let cur: [number, string]
      try {
        cur = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')) as [number, string]
        if (!Array.isArray(cur) || typeof cur[0] !== 'number' || typeof cur[1] !== 'string') throw new Error('shape')
      } catch {
        throw new PicketError('PICKET_ERR_VALIDATION', 'cursor is not a cursor this API returned; start again without it')
      }
      pageWhere.push(`(${col} < ? OR (${col} = ? AND id < ?))`)
      pageArgs.push(cur[0], cur[0], cur[1])
    }
    const rows = this.db.sql.prepare(`SELECT * FROM findings ${pageWhere.length > 0 ? `WHERE ${pageWhere.join(' AND ')}` : ''} ORDER BY ${col} DESC, id DESC LIMIT ?`)
      .all(...pageArgs, limit + 1) as FindingDbRow[]
    const more = rows.length > limit
    const items = rows.slice(0, limit).map(r => this.#stored(r))
    const last = rows[limit - 1]
    const nextCursor = more && last !== undefined
      ? Buffer.from(JSON.stringify([last[col], last.id])).toString('base64url')
      : undefined
    return { items, total, nextCursor }
  }

  /** Findings changed after `changeSeq` (oldest first): what an SSE client missed. */
  changesSince (changeSeq: number, limit = 500): StoredFinding[] {
    return (this.db.sql.prepare('SELECT * FROM findings WHERE change_seq > ? ORDER BY change_seq LIMIT ?').all(changeSeq, limit) as FindingDbRow[]).map(r => this.#stored(r))
  }
}
