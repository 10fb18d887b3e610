import Database from 'better-sqlite3'
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DROP_CAUSES, FINDING_STATES, sqlIn, TRIAGE_STATUSES, type DropCause } from '../../shared/enums.js'
import { PicketError } from '../../shared/errors.js'

// The SQLite file under the alert store: schema, version check, pragmas,
// open and close. WAL mode, so `picket alerts` reads while the backend writes.

const SCHEMA_VERSION = 2

/** The hosts table's column for one drop cause. */
export function dropColumn (cause: DropCause): `drop_${DropCause}` {
  return `drop_${cause}`
}

/** A finding's hosts or sources: one row per (finding, value), searchable by value. */
function findingLinks (table: string, col: string, index: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  finding_id TEXT NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
  ${col} TEXT NOT NULL,
  PRIMARY KEY (finding_id, ${col})
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ${index} ON ${table} (${col});`
}

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
${findingLinks('finding_hosts', 'host_id', 'finding_hosts_host')}
${findingLinks('finding_sources', 'ip', 'finding_sources_ip')}
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
${DROP_CAUSES.map(c => `  ${dropColumn(c)} INTEGER NOT NULL DEFAULT 0,\n`).join('')}  refused_batches INTEGER NOT NULL DEFAULT 0,
  duplicate_batches INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS seq_floors (
  host_id TEXT NOT NULL,
  instance TEXT NOT NULL,
  last_seq INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  PRIMARY KEY (host_id, instance)
) WITHOUT ROWID;
`

/** What takes a store of version N - 1 to version N; SCHEMA above has already made any new table. */
const MIGRATIONS: Readonly<Record<number, string>> = {
  // dedup floors per (host, agent instance): a host's one floor becomes its legacy instance ''
  2: `INSERT OR IGNORE INTO seq_floors (host_id, instance, last_seq, last_seen)
      SELECT host_id, '', last_seq, last_seen FROM hosts WHERE last_seq > 0`,
}

function migrate (sql: Database.Database, from: number): void {
  sql.transaction(() => {
    for (let v = from + 1; v <= SCHEMA_VERSION; v++) if (MIGRATIONS[v] !== undefined) sql.exec(MIGRATIONS[v])
    sql.prepare('UPDATE meta SET value = ? WHERE key = ?').run(String(SCHEMA_VERSION), 'schema_version')
  })()
}

/** An open store file, and whether this process may write it. */
export interface StoreDb {
  readonly sql: Database.Database
  readonly path: string
  readonly readonly: boolean
}

/** Open (and create and migrate, unless readonly) the store file at `path`. */
export function openDb (path: string, readonly: boolean): StoreDb {
  let sql: Database.Database
  try {
    if (!readonly && path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
    sql = new Database(path, { readonly, fileMustExist: readonly })
  } catch (err) {
    const e = err as Error & { code?: string }
    throw new PicketError('PICKET_ERR_STORE', readonly && e.code === 'SQLITE_CANTOPEN'
      ? `no alert store at ${path}: start the backend with --db ${path} first, or pass --db with the backend's store`
      : `the alert store ${path} cannot be opened: ${e.message}; check the path and its permissions`)
  }
  sql.pragma('busy_timeout = 5000')
  if (!readonly) {
    sql.pragma('journal_mode = WAL')
    sql.pragma('synchronous = NORMAL')
    sql.pragma('foreign_keys = ON')
    sql.exec(SCHEMA)
    const v = sql.prepare('SELECT value FROM meta WHERE key = ?').get('schema_version') as { value: string } | undefined
    if (v === undefined) sql.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('schema_version', String(SCHEMA_VERSION))
    else if (Number(v.value) > SCHEMA_VERSION) {
      throw new PicketError('PICKET_ERR_STORE', `the alert store ${path} has schema version ${v.value}, newer than this Picket (${SCHEMA_VERSION}); upgrade Picket or use another --db`)
    } else if (Number(v.value) < SCHEMA_VERSION) migrate(sql, Number(v.value))
  } else {
    const ok = sql.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'findings'").get() as { n: number }
    if (ok.n === 0) throw new PicketError('PICKET_ERR_STORE', `${path} is not a Picket alert store (no findings table); pass the --db the backend uses`)
  }
  return { sql, path, readonly }
}

/**
 * One part of the store (findings, triage, hosts). Reads prepare their
 * statement when they run; the statements a part writes with are prepared
 * once, on a writable store only, and on a read-only one asking for them is
 * the error.
 */
export abstract class StorePart<W> {
  protected readonly db: StoreDb
  readonly #writes: W | undefined

  constructor (db: StoreDb, prepare: (sql: Database.Database) => W) {
    this.db = db
    this.#writes = db.readonly ? undefined : prepare(db.sql)
  }

  protected writes (): W {
    if (this.#writes === undefined) throw new PicketError('PICKET_ERR_STORE', `the alert store ${this.db.path} is open read-only`)
    return this.#writes
  }
}

export function closeDb (db: StoreDb): void {
  if (db.sql.open) db.sql.close()
}
