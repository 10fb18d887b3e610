import { EventEmitter } from 'node:events'
import type { FindingEvent } from '../detection/finding.js'
import type { InstanceFloor } from '../detection/seq.js'
import { closeDb, openDb, type StoreDb } from './db.js'
import { Fences } from './fences.js'
import { Findings } from './findings.js'
import { Hosts } from './hosts.js'
import { Triage } from './triage.js'
import type { FindingChange, FindingPage, FindingQuery, HistoryEntry, HostDelta, HostPage, HostQuery, HostRow, StoreEvents, StoreOptions, StoredFinding, TriageChange } from './types.js'

// The alert store: SQLite through better-sqlite3, WAL mode. Findings keep
// their full OCSF JSON plus indexed columns for the console's filters; triage
// changes keep a history; hosts keep agent health. Nothing here is on the
// per-record path: the backend hands findings over in small transactions and
// host counters once a second. Listeners hear of a change only after the
// transaction that wrote it committed, so a listener that throws cannot undo
// a write or make its writer think it failed: it is reported, not raised.

export * from './types.js'

export class AlertStore extends EventEmitter<StoreEvents> {
  readonly path: string
  readonly readonly: boolean
  readonly #db: StoreDb
  readonly #findings: Findings
  readonly #triage: Triage
  readonly #hosts: Hosts
  readonly #fences: Fences
  readonly #onListenerError: NonNullable<StoreOptions['onListenerError']>
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
    this.#fences = new Fences(this.#db)
    this.#changeSeq = this.#findings.lastChangeSeq()
    this.#onListenerError = opts.onListenerError ?? ((err, event) => { process.emitWarning(`alert store: a '${event}' listener failed: ${err.message}`) })
  }

  /** Tell every listener of a committed change; one that throws is reported and does not stop the others. */
  #announce<K extends keyof StoreEvents> (event: K, ...args: StoreEvents[K]): void {
    for (const listener of this.rawListeners(event)) {
      try {
        (listener as (...a: StoreEvents[K]) => void)(...args)
      } catch (err) {
        this.#onListenerError(err instanceof Error ? err : new Error(String(err)), event)
      }
    }
  }

  /** Write finding events (Create / Update / Close) in one transaction; emits 'finding' per change after commit. */
  applyFindingEvents (events: readonly FindingEvent[], now = Date.now()): FindingChange[] {
    const changed = this.#findings.apply(events, now, this.#nextSeq)
    const out = changed.map(c => ({ kind: c.kind, finding: this.#stored(c.id) }))
    for (const c of out) this.#announce('finding', c)
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
      if (f !== undefined) this.#announce('finding', { kind: 'closed', finding: f })
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
    this.#announce('finding', { kind: 'triaged', finding: out })
    return out
  }

  history (id: string): HistoryEntry[] {
    return this.#triage.history(id)
  }

  /** Add one flush worth of host traffic (one transaction); emits 'hosts' with the updated rows. */
  recordHosts (deltas: readonly HostDelta[]): HostRow[] {
    const rows = this.#hosts.record(deltas)
    if (deltas.length > 0) this.#announce('hosts', rows)
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

  /** Delete dedup floors idle past their age (INSTANCE_TTL_MS); how many went. */
  expireFloors (now = Date.now()): number {
    return this.#hosts.expireFloors(now)
  }

  /** One host's dedup floors, per agent instance (none for a host never seen): what a detection worker that holds no actor for it starts from. */
  floorsOf (hostId: string, now = Date.now()): InstanceFloor[] {
    return this.#hosts.floorsOf(hostId, now)
  }

  /** A page of hosts by host id (limit + cursor, like listFindings), with the total. */
  listHosts (q: HostQuery = {}): HostPage {
    return this.#hosts.list(q)
  }

  getHost (hostId: string): HostRow | undefined {
    return this.#hosts.get(hostId)
  }

  /** Cluster mode: may a writer holding lease `token` on `partition` write? Refuses a stale owner (fences.ts). */
  admitFence (partition: number, token: number): boolean {
    return this.#fences.admit(partition, token)
  }

  /** Each partition's fence: the lease token of its last writer. */
  fences (): Map<number, number> {
    return this.#fences.all()
  }

  close (): void {
    closeDb(this.#db)
  }

  /** A finding just written: it is there. */
  #stored (id: string): StoredFinding {
    return this.#findings.get(id) as StoredFinding
  }
}
