import Database from 'better-sqlite3'
import { EventEmitter } from 'node:events'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DROP_CAUSES, FINDING_STATES, sqlIn, TRIAGE_OCSF, TRIAGE_STATUSES, type TriageStatus } from '../shared/enums.js'
import { PicketError } from '../shared/errors.js'
import { SEVERITY_NAME } from '../shared/ocsf/constants.js'
import type { DetectionFinding } from '../shared/ocsf/types.js'
import type { DropCounters } from '../shared/proto/index.js'
import type { FindingEvent } from './detection/finding.js'

// The alert store: SQLite through better-sqlite3, WAL mode. Findings keep
// their full OCSF JSON plus indexed columns for the console's filters; triage
// changes keep a history; hosts keep agent health. Nothing here is on the
// per-record path: the backend hands findings over in small transactions and
// host counters once a second.

export { DROP_CAUSES, TRIAGE_OCSF, TRIAGE_STATUSES, type TriageStatus } from '../shared/enums.js'

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
  state: 'open' | 'closed'
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

export interface FindingQuery {
  status?: TriageStatus | TriageStatus[]
  state?: 'open' | 'closed'
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
  order?: 'created' | 'updated' | 'last_seen'
  /** 1..500, default 50 */
  limit?: number
  /** nextCursor of the previous page */
  cursor?: string
}

export interface FindingPage { items: StoredFinding[], total: number, nextCursor: string | undefined }

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
}

const SCHEMA_VERSION = 1

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS findings (
  id TEXT PRIMARY KEY,
  rule TEXT NOT NULL,
  title TEXT NOT NULL,
  technique TEXT NOT NULL,
  tactic TEXT NOT NULL,
  severity_id INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'new' ${sqlIn('status', TRIAGE_STATUSES)},
  state TEXT NOT NULL ${sqlIn('state', FINDING_STATES)},
  host_id TEXT,
  hosts_count INTEGER NOT NULL,
  sources TEXT NOT NULL,
  sources_count INTEGER NOT NULL,
  port_count INTEGER NOT NULL,
  records INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  closed_at INTEGER,
  change_seq INTEGER NOT NULL,
  finding TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS findings_created ON findings (created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS findings_updated ON findings (updated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS findings_last_seen ON findings (last_seen DESC, id DESC);
CREATE INDEX IF NOT EXISTS findings_status ON findings (status, created_at DESC);
CREATE INDEX IF NOT EXISTS findings_technique ON findings (technique, created_at DESC);
CREATE INDEX IF NOT EXISTS findings_change ON findings (change_seq);
CREATE TABLE IF NOT EXISTS finding_hosts (
  finding_id TEXT NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
  host_id TEXT NOT NULL,
  PRIMARY KEY (finding_id, host_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS finding_hosts_host ON finding_hosts (host_id);
CREATE TABLE IF NOT EXISTS finding_sources (
  finding_id TEXT NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
  ip TEXT NOT NULL,
  PRIMARY KEY (finding_id, ip)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS finding_sources_ip ON finding_sources (ip);
CREATE TABLE IF NOT EXISTS finding_history (
  id INTEGER PRIMARY KEY,
  finding_id TEXT NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  from_status TEXT,
  to_status TEXT NOT NULL,
  note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS finding_history_finding ON finding_history (finding_id, at);
CREATE TABLE IF NOT EXISTS hosts (
  host_id TEXT PRIMARY KEY,
  hostname TEXT NOT NULL DEFAULT '',
  agent_version TEXT NOT NULL DEFAULT '',
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  last_seq INTEGER NOT NULL DEFAULT 0,
  records INTEGER NOT NULL DEFAULT 0,
  batches INTEGER NOT NULL DEFAULT 0,
  bytes INTEGER NOT NULL DEFAULT 0,
  records_per_sec REAL NOT NULL DEFAULT 0,
  captured_total INTEGER NOT NULL DEFAULT 0,
${DROP_CAUSES.map(c => `  drop_${c} INTEGER NOT NULL DEFAULT 0,\n`).join('')}  refused_batches INTEGER NOT NULL DEFAULT 0,
  duplicate_batches INTEGER NOT NULL DEFAULT 0
);
`

interface FindingDbRow {
  id: string
  rule: string
  title: string
  technique: string
  tactic: string
  severity_id: number
  status: TriageStatus
  state: 'open' | 'closed'
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

interface HostDbRow {
  host_id: string
  hostname: string
  agent_version: string
  first_seen: number
  last_seen: number
  last_seq: number
  records: number
  batches: number
  bytes: number
  records_per_sec: number
  captured_total: number
  drop_kernel_reserve: number
  drop_kernel_recursion: number
  drop_slab_starvation: number
  drop_spool_eviction: number
  drop_decode_error: number
  drop_refused: number
  refused_batches: number
  duplicate_batches: number
}

const ORDER_COL = { created: 'created_at', updated: 'updated_at', last_seen: 'last_seen' } as const

function toHost (r: HostDbRow): HostRow {
  return {
    hostId: r.host_id,
    hostname: r.hostname,
    agentVersion: r.agent_version,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    lastSeq: r.last_seq,
    records: r.records,
    batches: r.batches,
    bytes: r.bytes,
    recordsPerSec: r.records_per_sec,
    capturedTotal: r.captured_total,
    drops: {
      kernel_reserve: r.drop_kernel_reserve,
      kernel_recursion: r.drop_kernel_recursion,
      slab_starvation: r.drop_slab_starvation,
      spool_eviction: r.drop_spool_eviction,
      decode_error: r.drop_decode_error,
      refused: r.drop_refused,
    },
    refusedBatches: r.refused_batches,
    duplicateBatches: r.duplicate_batches,
  }
}

function withTriage (finding: DetectionFinding, status: TriageStatus): DetectionFinding {
  const s = TRIAGE_OCSF[status]
  return { ...finding, status_id: s.id, status: s.name }
}

export class AlertStore extends EventEmitter<StoreEvents> {
  readonly path: string
  readonly readonly: boolean
  readonly #db: Database.Database
  readonly #st: ReturnType<AlertStore['prepare']> | undefined
  #changeSeq = 0

  /** Open (and create, unless readonly) the store at `path`. */
  static open (path: string, opts: StoreOptions = {}): AlertStore {
    return new AlertStore(path, opts)
  }

  private constructor (path: string, opts: StoreOptions) {
    super()
    this.path = path
    this.readonly = opts.readonly === true
    try {
      if (!this.readonly && path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
      this.#db = new Database(path, { readonly: this.readonly, fileMustExist: this.readonly })
    } catch (err) {
      const e = err as Error & { code?: string }
      throw new PicketError('PICKET_ERR_STORE', this.readonly && e.code === 'SQLITE_CANTOPEN'
        ? `no alert store at ${path}: start the backend with --db ${path} first, or pass --db with the backend's store`
        : `the alert store ${path} cannot be opened: ${e.message}; check the path and its permissions`)
    }
    this.#db.pragma('busy_timeout = 5000')
    if (!this.readonly) {
      this.#db.pragma('journal_mode = WAL')
      this.#db.pragma('synchronous = NORMAL')
      this.#db.pragma('foreign_keys = ON')
      this.#db.exec(SCHEMA)
      const v = this.#db.prepare('SELECT value FROM meta WHERE key = ?').get('schema_version') as { value: string } | undefined
      if (v === undefined) this.#db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema_version', String(SCHEMA_VERSION))
      else if (Number(v.value) > SCHEMA_VERSION) {
        throw new PicketError('PICKET_ERR_STORE', `the alert store ${path} has schema version ${v.value}, newer than this Picket (${SCHEMA_VERSION}); upgrade Picket or use another --db`)
      }
      this.#st = this.prepare()
    } else {
      const ok = this.#db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'findings'").get() as { n: number }
      if (ok.n === 0) throw new PicketError('PICKET_ERR_STORE', `${path} is not a Picket alert store (no findings table); pass the --db the backend uses`)
    }
    const max = this.#db.prepare('SELECT max(change_seq) AS m FROM findings').get() as { m: number | null }
    this.#changeSeq = max.m ?? 0
  }

  private prepare () {
    const db = this.#db
    return {
      insert: db.prepare(`INSERT INTO findings (id, rule, title, technique, tactic, severity_id, status, state, host_id, hosts_count, sources, sources_count, port_count, records, first_seen, last_seen, created_at, updated_at, closed_at, change_seq, finding)
        VALUES (@id, @rule, @title, @technique, @tactic, @severity_id, 'new', @state, @host_id, @hosts_count, @sources, @sources_count, @port_count, @records, @first_seen, @last_seen, @now, @now, @closed_at, @change_seq, @finding)`),
      update: db.prepare(`UPDATE findings SET title = @title, severity_id = @severity_id, state = @state, hosts_count = @hosts_count, sources = @sources, sources_count = @sources_count,
        port_count = @port_count, records = @records, first_seen = @first_seen, last_seen = @last_seen, updated_at = @now, closed_at = @closed_at, change_seq = @change_seq, finding = @finding WHERE id = @id`),
      status: db.prepare('SELECT status FROM findings WHERE id = ?'),
      get: db.prepare('SELECT * FROM findings WHERE id = ?'),
      host: db.prepare('INSERT OR IGNORE INTO finding_hosts (finding_id, host_id) VALUES (?, ?)'),
      source: db.prepare('INSERT OR IGNORE INTO finding_sources (finding_id, ip) VALUES (?, ?)'),
      history: db.prepare('INSERT INTO finding_history (finding_id, at, actor, from_status, to_status, note) VALUES (?, ?, ?, ?, ?, ?)'),
      triage: db.prepare('UPDATE findings SET status = ?, updated_at = ?, change_seq = ?, finding = ? WHERE id = ?'),
      hostUpsert: db.prepare(`INSERT INTO hosts (host_id, hostname, agent_version, first_seen, last_seen, records, batches, bytes, records_per_sec, captured_total,
          drop_kernel_reserve, drop_kernel_recursion, drop_slab_starvation, drop_spool_eviction, drop_decode_error, drop_refused, refused_batches, duplicate_batches)
        VALUES (@host_id, @hostname, @agent_version, @last_seen, @last_seen, @records, @batches, @bytes, @rps, @captured,
          @kernel_reserve, @kernel_recursion, @slab_starvation, @spool_eviction, @decode_error, @refused, @refused_batches, @duplicate_batches)
        ON CONFLICT (host_id) DO UPDATE SET
          hostname = CASE WHEN @hostname = '' THEN hostname ELSE @hostname END,
          agent_version = CASE WHEN @agent_version = '' THEN agent_version ELSE @agent_version END,
          last_seen = max(last_seen, @last_seen),
          records = records + @records, batches = batches + @batches, bytes = bytes + @bytes, records_per_sec = @rps,
          captured_total = CASE WHEN @has_captured THEN @captured ELSE captured_total END,
          drop_kernel_reserve = CASE WHEN @has_drops THEN @kernel_reserve ELSE drop_kernel_reserve END,
          drop_kernel_recursion = CASE WHEN @has_drops THEN @kernel_recursion ELSE drop_kernel_recursion END,
          drop_slab_starvation = CASE WHEN @has_drops THEN @slab_starvation ELSE drop_slab_starvation END,
          drop_spool_eviction = CASE WHEN @has_drops THEN @spool_eviction ELSE drop_spool_eviction END,
          drop_decode_error = CASE WHEN @has_drops THEN @decode_error ELSE drop_decode_error END,
          drop_refused = CASE WHEN @has_drops THEN @refused ELSE drop_refused END,
          refused_batches = refused_batches + @refused_batches, duplicate_batches = duplicate_batches + @duplicate_batches`),
      hostSeq: db.prepare('UPDATE hosts SET last_seq = max(last_seq, ?) WHERE host_id = ?'),
      hostGet: db.prepare('SELECT * FROM hosts WHERE host_id = ?'),
    }
  }

  #writable (): NonNullable<AlertStore['prepare'] extends () => infer R ? R : never> {
    if (this.#st === undefined) throw new PicketError('PICKET_ERR_STORE', `the alert store ${this.path} is open read-only`)
    return this.#st
  }

  #row (r: FindingDbRow): StoredFinding {
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
      hosts: (this.#db.prepare('SELECT host_id FROM finding_hosts WHERE finding_id = ? ORDER BY host_id LIMIT 1000').all(r.id) as Array<{ host_id: string }>).map(x => x.host_id),
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

  /** Write finding events (Create / Update / Close) in one transaction; emits 'finding' per change after commit. */
  applyFindingEvents (events: readonly FindingEvent[], now = Date.now()): FindingChange[] {
    const st = this.#writable()
    const changed: Array<{ kind: FindingChangeKind, id: string }> = []
    this.#db.transaction(() => {
      for (const ev of events) {
        const s = ev.summary
        const cur = st.status.get(s.id) as { status: TriageStatus } | undefined
        const status = cur?.status ?? 'new'
        const state = ev.activity === 'close' ? 'closed' : 'open'
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
          change_seq: ++this.#changeSeq,
          finding: JSON.stringify(withTriage(ev.finding, status)),
        }
        if (cur === undefined) {
          st.insert.run(params)
          st.history.run(s.id, now, 'picket', null, 'new', `raised by rule ${s.rule}`)
          changed.push({ kind: state === 'closed' ? 'closed' : 'created', id: s.id })
        } else {
          st.update.run(params)
          changed.push({ kind: state === 'closed' ? 'closed' : 'updated', id: s.id })
        }
        for (const h of s.hosts) st.host.run(s.id, h)
        for (const ip of s.sources) st.source.run(s.id, ip)
      }
    })()
    const out = changed.map(c => ({ kind: c.kind, finding: this.#row(st.get.get(c.id) as FindingDbRow) }))
    for (const c of out) this.emit('finding', c)
    return out
  }

  /**
   * Close the findings a previous run left open. Sliding windows are not
   * persisted, so after a restart an ongoing scan opens a new incident; the
   * old one would otherwise stay open for ever. Returns how many were closed.
   */
  closeOrphans (now = Date.now()): number {
    this.#writable()
    const ids = (this.#db.prepare("SELECT id FROM findings WHERE state = 'open'").all() as Array<{ id: string }>).map(r => r.id)
    if (ids.length === 0) return 0
    const close = this.#db.prepare(`UPDATE findings SET state = 'closed', closed_at = ?, updated_at = ?, change_seq = ?,
      finding = json_remove(json_set(finding, '$.activity_id', 3, '$.activity_name', 'Close', '$.type_uid', 200403, '$.type_name', 'Detection Finding: Close',
        '$.unmapped.picket.state', 'closed', '$.unmapped.picket.closed_by', 'backend restart'), '$.is_alert') WHERE id = ?`)
    this.#db.transaction(() => { for (const id of ids) close.run(now, now, ++this.#changeSeq, id) })()
    for (const id of ids) {
      const f = this.getFinding(id)
      if (f !== undefined) this.emit('finding', { kind: 'closed', finding: f })
    }
    return ids.length
  }

  getFinding (id: string): StoredFinding | undefined {
    const r = this.#db.prepare('SELECT * FROM findings WHERE id = ?').get(id) as FindingDbRow | undefined
    return r === undefined ? undefined : this.#row(r)
  }

  listFindings (q: FindingQuery = {}): FindingPage {
    const where: string[] = []
    const args: unknown[] = []
    if (q.status !== undefined) {
      const list = Array.isArray(q.status) ? q.status : [q.status]
      for (const s of list) {
        if (!TRIAGE_STATUSES.includes(s)) throw new PicketError('PICKET_ERR_VALIDATION', `status '${String(s)}' is not one of ${TRIAGE_STATUSES.join(', ')}`)
      }
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
    if (col === undefined) throw new PicketError('PICKET_ERR_VALIDATION', `order '${String(order)}' is not one of ${Object.keys(ORDER_COL).join(', ')}`)
    const limit = q.limit ?? 50
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new PicketError('PICKET_ERR_VALIDATION', 'limit must be an integer from 1 to 500')
    const base = where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''
    const total = (this.#db.prepare(`SELECT count(*) AS n FROM findings ${base}`).get(...args) as { n: number }).n
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
    const rows = this.#db.prepare(`SELECT * FROM findings ${pageWhere.length > 0 ? `WHERE ${pageWhere.join(' AND ')}` : ''} ORDER BY ${col} DESC, id DESC LIMIT ?`)
      .all(...pageArgs, limit + 1) as FindingDbRow[]
    const more = rows.length > limit
    const items = rows.slice(0, limit).map(r => this.#row(r))
    const last = rows[limit - 1]
    const nextCursor = more && last !== undefined
      ? Buffer.from(JSON.stringify([last[col], last.id])).toString('base64url')
      : undefined
    return { items, total, nextCursor }
  }

  /** Findings changed after `changeSeq` (oldest first): what an SSE client missed. */
  changesSince (changeSeq: number, limit = 500): StoredFinding[] {
    return (this.#db.prepare('SELECT * FROM findings WHERE change_seq > ? ORDER BY change_seq LIMIT ?').all(changeSeq, limit) as FindingDbRow[]).map(r => this.#row(r))
  }

  /** Set the triage status, keeping who, when, from → to and the note. */
  setStatus (id: string, change: { status: TriageStatus, actor: string, note?: string }, now = Date.now()): StoredFinding {
    const st = this.#writable()
    if (!TRIAGE_STATUSES.includes(change.status)) {
      throw new PicketError('PICKET_ERR_VALIDATION', `status '${String(change.status)}' is not one of ${TRIAGE_STATUSES.join(', ')}`)
    }
    if (typeof change.actor !== 'string' || change.actor.trim() === '') throw new PicketError('PICKET_ERR_VALIDATION', 'actor must name who changed the status')
    const note = change.note ?? ''
    const out = this.#db.transaction(() => {
      const r = st.get.get(id) as FindingDbRow | undefined
      if (r === undefined) throw new PicketError('PICKET_ERR_NOT_FOUND', `no finding has id ${id}`)
      const finding = withTriage({ ...(JSON.parse(r.finding) as DetectionFinding) }, change.status)
      st.triage.run(change.status, now, ++this.#changeSeq, JSON.stringify(finding), id)
      st.history.run(id, now, change.actor, r.status, change.status, note)
      return this.#row(st.get.get(id) as FindingDbRow)
    })()
    this.emit('finding', { kind: 'triaged', finding: out })
    return out
  }

  history (id: string): HistoryEntry[] {
    const rows = this.#db.prepare('SELECT id, finding_id, at, actor, from_status, to_status, note FROM finding_history WHERE finding_id = ? ORDER BY at, id').all(id) as Array<{
      id: number, finding_id: string, at: number, actor: string, from_status: TriageStatus | null, to_status: TriageStatus, note: string
    }>
    return rows.map(r => ({ id: r.id, findingId: r.finding_id, at: r.at, actor: r.actor, from: r.from_status, to: r.to_status, note: r.note }))
  }

  /** Add one flush worth of host traffic (one transaction); emits 'hosts' with the updated rows. */
  recordHosts (deltas: readonly HostDelta[]): HostRow[] {
    const st = this.#writable()
    if (deltas.length === 0) return []
    const rows = this.#db.transaction(() => {
      const out: HostRow[] = []
      for (const d of deltas) {
        const drops = d.drops ?? {}
        st.hostUpsert.run({
          host_id: d.hostId,
          hostname: d.hostname ?? '',
          agent_version: d.agentVersion ?? '',
          last_seen: d.lastSeen,
          records: d.records,
          batches: d.batches,
          bytes: d.bytes,
          rps: d.recordsPerSec,
          captured: d.capturedTotal ?? 0,
          has_captured: d.capturedTotal !== undefined ? 1 : 0,
          has_drops: d.drops !== undefined ? 1 : 0,
          kernel_reserve: drops.kernel_reserve ?? 0,
          kernel_recursion: drops.kernel_recursion ?? 0,
          slab_starvation: drops.slab_starvation ?? 0,
          spool_eviction: drops.spool_eviction ?? 0,
          decode_error: drops.decode_error ?? 0,
          refused: drops.refused ?? 0,
          refused_batches: d.refusedBatches,
          duplicate_batches: d.duplicateBatches,
        })
        out.push(toHost(st.hostGet.get(d.hostId) as HostDbRow))
      }
      return out
    })()
    this.emit('hosts', rows)
    return rows
  }

  /** Persist the detection plane's dedup floors, so a restart does not count replays twice. */
  recordSeqs (entries: ReadonlyArray<{ hostId: string, lastSeq: number }>): void {
    const st = this.#writable()
    if (entries.length === 0) return
    this.#db.transaction(() => { for (const e of entries) st.hostSeq.run(e.lastSeq, e.hostId) })()
  }

  lastSeqs (): Map<string, number> {
    const rows = this.#db.prepare('SELECT host_id, last_seq FROM hosts WHERE last_seq > 0').all() as Array<{ host_id: string, last_seq: number }>
    return new Map(rows.map(r => [r.host_id, r.last_seq]))
  }

  listHosts (): HostRow[] {
    return (this.#db.prepare('SELECT * FROM hosts ORDER BY host_id').all() as HostDbRow[]).map(toHost)
  }

  getHost (hostId: string): HostRow | undefined {
    const r = this.#db.prepare('SELECT * FROM hosts WHERE host_id = ?').get(hostId) as HostDbRow | undefined
    return r === undefined ? undefined : toHost(r)
  }

  close (): void {
    if (this.#db.open) this.#db.close()
  }
}
