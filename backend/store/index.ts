import { EventEmitter } from 'node:events'
import type { FindingEvent } from '../detection/finding.js'
import type { InstanceFloor } from '../detection/seq.js'
import { closeDb, openDb, type StoreDb } from './db.js'
import { Findings } from './findings.js'
import { Hosts } from './hosts.js'
import { Triage } from './triage.js'
import type { FindingChange, FindingPage, FindingQuery, HistoryEntry, HostDelta, HostRow, StoreEvents, StoreOptions, StoredFinding, TriageChange } from './types.js'

// The alert store: SQLite through better-sqlite3, WAL mode. Findings keep
// their full OCSF JSON plus indexed columns for the console's filters; triage
// changes keep a history; hosts keep agent health. Nothing here is on the
// per-record path: the backend hands findings over in small transactions and
// host counters once a second. Listeners hear of a change only after the
// transaction that wrote it committed.

export * from './types.js'

export class AlertStore extends EventEmitter<StoreEvents> {
  readonly path: string
  readonly readonly: boolean
  readonly #db: StoreDb
  readonly #findings: Findings
  readonly #triage: Triage
  readonly #hosts: Hosts
  #changeSeq: number
  readonly #nextSeq = (): number => ++this.#changeSeq

  /** Open (and create, unless readonly) the store at `path`. */
  static open (path: string, opts: StoreOptions = {}): AlertStore {
    return new AlertStore(path, opts)
  }

  private constructor (path: string, opts: StoreOptions) {
    super()
    this.path = path
    this.readonly = opts.readonly === true
    this.#db = openDb(path, this.readonly)
    this.#triage = new Triage(this.#db)
    this.#findings = new Findings(this.#db, this.#triage)
    this.#hosts = new Hosts(this.#db)
    this.#changeSeq = this.#findings.lastChangeSeq()
  }

  /** Write finding events (Create / Update / Close) in one transaction; emits 'finding' per change after commit. */
  applyFindingEvents (events: readonly FindingEvent[], now = Date.now()): FindingChange[] {
    const changed = this.#findings.apply(events, now, this.#nextSeq)
    const out = changed.map(c => ({ kind: c.kind, finding: this.#stored(c.id) }))
    for (const c of out) this.emit('finding', c)
    return out
  }

  /**
   * Close the findings a previous run left open. Sliding windows are not
   * persisted, so after a restart an ongoing scan opens a new incident; the
   * old one would otherwise stay open for ever. Returns how many were closed.
   */
  closeOrphans (now = Date.now()): number {
    const ids = this.#findings.closeOrphans(now, this.#nextSeq)
    for (const id of ids) {
      const f = this.#findings.get(id)
      if (f !== undefined) this.emit('finding', { kind: 'closed', finding: f })
    }
    return ids.length
  }

  getFinding (id: string): StoredFinding | undefined {
    return this.#findings.get(id)
  }

  listFindings (q: FindingQuery = {}): FindingPage {
    return this.#findings.list(q)
  }

  /** Findings changed after `changeSeq` (oldest first): what an SSE client missed. */
  changesSince (changeSeq: number, limit = 500): StoredFinding[] {
    return this.#findings.changesSince(changeSeq, limit)
  }

  /** Set the triage status, keeping who, when, from → to and the note. */
  setStatus (id: string, change: TriageChange, now = Date.now()): StoredFinding {
    this.#triage.setStatus(id, change, now, this.#nextSeq)
    const out = this.#stored(id)
    this.emit('finding', { kind: 'triaged', finding: out })
    return out
  }

  history (id: string): HistoryEntry[] {
    return this.#triage.history(id)
  }

  /** Add one flush worth of host traffic (one transaction); emits 'hosts' with the updated rows. */
  recordHosts (deltas: readonly HostDelta[]): HostRow[] {
    const rows = this.#hosts.record(deltas)
    if (deltas.length > 0) this.emit('hosts', rows)
    return rows
  }

  /** Persist the detection plane's dedup floors, per (host, agent instance), so a restart does not count replays twice. */
  recordSeqs (entries: ReadonlyArray<{ hostId: string, floors: readonly InstanceFloor[] }>, now = Date.now()): void {
    this.#hosts.recordSeqs(entries, now)
  }

  /** The dedup floors by host id, bounded per host and aged out as the detection plane does. */
  lastSeqs (now = Date.now()): Map<string, InstanceFloor[]> {
    return this.#hosts.lastSeqs(now)
  }

  listHosts (): HostRow[] {
    return this.#hosts.list()
  }

  getHost (hostId: string): HostRow | undefined {
    return this.#hosts.get(hostId)
  }

  close (): void {
    closeDb(this.#db)
  }

  /** A finding just written: it is there. */
  #stored (id: string): StoredFinding {
    return this.#findings.get(id) as StoredFinding
  }
}
