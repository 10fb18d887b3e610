import { DROP_CAUSES, zeroDrops } from '../../shared/enums.js'
import { PicketError } from '../../shared/errors.js'
import { INSTANCE_TTL_MS, MAX_INSTANCES_PER_HOST, type InstanceFloor } from '../detection/seq.js'
import { dropColumn, StorePart, type StoreDb } from './db.js'
import type { HostDelta, HostPage, HostQuery, HostRow } from './types.js'

// The hosts table: each agent's health (last seen, rate, totals, drops by
// cause as it last reported them). The seq_floors table: the detection
// plane's dedup floors, one per (host, agent instance), so a restart does not
// count replayed batches twice. Floors are bounded as in memory: a host keeps
// its MAX_INSTANCES_PER_HOST most recent instances, none idle past
// INSTANCE_TTL_MS. hosts.last_seq is the floor of the instance heard last.

type HostDbRow = Record<ReturnType<typeof dropColumn>, number> & {
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
  refused_batches: number
  duplicate_batches: number
}

function toHost (r: HostDbRow): HostRow {
  const drops = zeroDrops()
  for (const c of DROP_CAUSES) drops[c] = r[dropColumn(c)]
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
    drops,
    refusedBatches: r.refused_batches,
    duplicateBatches: r.duplicate_batches,
  }
}

// Drop counters are cumulative on the agent: a report replaces them, and a
// delta without one keeps what the table has.
const UPSERT = `INSERT INTO hosts (host_id, hostname, agent_version, first_seen, last_seen, records, batches, bytes, records_per_sec, captured_total,
    ${DROP_CAUSES.map(dropColumn).join(', ')}, refused_batches, duplicate_batches)
  VALUES (@host_id, @hostname, @agent_version, @last_seen, @last_seen, @records, @batches, @bytes, @rps, @captured,
    ${DROP_CAUSES.map(c => `@${c}`).join(', ')}, @refused_batches, @duplicate_batches)
  ON CONFLICT (host_id) DO UPDATE SET
    hostname = CASE WHEN @hostname = '' THEN hostname ELSE @hostname END,
    agent_version = CASE WHEN @agent_version = '' THEN agent_version ELSE @agent_version END,
    last_seen = max(last_seen, @last_seen),
    records = records + @records, batches = batches + @batches, bytes = bytes + @bytes, records_per_sec = @rps,
    captured_total = CASE WHEN @has_captured THEN @captured ELSE captured_total END,
${DROP_CAUSES.map(c => `    ${dropColumn(c)} = CASE WHEN @has_drops THEN @${c} ELSE ${dropColumn(c)} END,\n`).join('')}    refused_batches = refused_batches + @refused_batches, duplicate_batches = duplicate_batches + @duplicate_batches`

const FLOOR_COLUMNS = 'host_id, instance, last_seq, last_seen'
interface FloorDbRow { host_id: string, instance: string, last_seq: number, last_seen: number }

function toFloor (r: FloorDbRow): InstanceFloor {
  return { instance: r.instance, lastSeq: r.last_seq, lastSeen: r.last_seen }
}

function prepareWrites (sql: StoreDb['sql']) {
  return {
    upsert: sql.prepare(UPSERT),
    seq: sql.prepare(`UPDATE hosts SET last_seq = coalesce((SELECT last_seq FROM seq_floors WHERE host_id = @host ORDER BY last_seen DESC LIMIT 1), last_seq)
      WHERE host_id = @host`),
    floor: sql.prepare(`INSERT INTO seq_floors (host_id, instance, last_seq, last_seen) VALUES (?, ?, ?, ?)
      ON CONFLICT (host_id, instance) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), last_seen = max(last_seen, excluded.last_seen)`),
    prune: sql.prepare(`DELETE FROM seq_floors WHERE host_id = @host AND (last_seen < @before OR instance NOT IN
      (SELECT instance FROM seq_floors WHERE host_id = @host ORDER BY last_seen DESC LIMIT @max))`),
    expire: sql.prepare('DELETE FROM seq_floors WHERE last_seen < ?'),
    get: sql.prepare('SELECT * FROM hosts WHERE host_id = ?'),
  }
}

export class Hosts extends StorePart<ReturnType<typeof prepareWrites>> {
  constructor (db: StoreDb) {
    super(db, prepareWrites)
  }

  /** Add one flush worth of host traffic in one transaction; the updated rows. */
  record (deltas: readonly HostDelta[]): HostRow[] {
    const st = this.writes()
    if (deltas.length === 0) return []
    return this.db.sql.transaction(() => deltas.map(d => {
      const drops = zeroDrops()
      for (const c of DROP_CAUSES) drops[c] = d.drops?.[c] ?? 0
      st.upsert.run({
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
        ...drops,
        refused_batches: d.refusedBatches,
        duplicate_batches: d.duplicateBatches,
      })
      return toHost(st.get.get(d.hostId) as HostDbRow)
    }))()
  }

  /** Persist the detection plane's dedup floors, per (host, instance); a floor never goes back. */
  recordSeqs (entries: ReadonlyArray<{ hostId: string, floors: readonly InstanceFloor[] }>, now = Date.now()): void {
    const st = this.writes()
    if (entries.length === 0) return
    this.db.sql.transaction(() => {
      for (const e of entries) {
        for (const f of e.floors) st.floor.run(e.hostId, f.instance, f.lastSeq, f.lastSeen)
        st.prune.run({ host: e.hostId, before: now - INSTANCE_TTL_MS, max: MAX_INSTANCES_PER_HOST })
        st.seq.run({ host: e.hostId })
      }
    })()
  }

  /** One host's dedup floors, most recent instance first; none for a host never seen. */
  floorsOf (hostId: string, now = Date.now()): InstanceFloor[] {
    const rows = this.db.sql.prepare(`SELECT ${FLOOR_COLUMNS} FROM seq_floors WHERE host_id = ? AND last_seq > 0 AND last_seen >= ? ORDER BY last_seen DESC`)
      .all(hostId, now - INSTANCE_TTL_MS) as FloorDbRow[]
    return rows.map(toFloor)
  }

  /** Delete the floors of instances idle past their age, also of hosts never heard from again; how many went. */
  expireFloors (now = Date.now()): number {
    return this.db.readonly ? 0 : this.writes().expire.run(now - INSTANCE_TTL_MS).changes
  }

  /** The dedup floors by host id, most recent instance first; on a writable store, floors past their age are deleted. */
  lastSeqs (now = Date.now()): Map<string, InstanceFloor[]> {
    const before = now - INSTANCE_TTL_MS
    this.expireFloors(now)
    const rows = this.db.sql.prepare(`SELECT ${FLOOR_COLUMNS} FROM seq_floors WHERE last_seq > 0 AND last_seen >= ? ORDER BY host_id, last_seen DESC`)
      .all(before) as FloorDbRow[]
    const out = new Map<string, InstanceFloor[]>()
    for (const r of rows) {
      let floors = out.get(r.host_id)
      if (floors === undefined) out.set(r.host_id, floors = [])
      floors.push(toFloor(r))
    }
    return out
  }

  /** One page of hosts by host id, and how many there are: never the whole table at once. */
  list (q: HostQuery = {}): HostPage {
    const limit = q.limit ?? 100
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new PicketError('PICKET_ERR_VALIDATION', 'limit must be an integer from 1 to 500')
    let after: string | undefined
    if (q.cursor !== undefined && q.cursor !== '') {
      const cur = (() => { try { return JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')) as unknown } catch { return undefined } })()
      if (!Array.isArray(cur) || typeof cur[0] !== 'string') throw new PicketError('PICKET_ERR_VALIDATION', 'cursor is not a cursor this API returned; start again without it')
      after = cur[0]
    }
    const total = (this.db.sql.prepare('SELECT count(*) AS n FROM hosts').get() as { n: number }).n
    const stale = q.staleBefore !== undefined ? (this.db.sql.prepare('SELECT count(*) AS n FROM hosts WHERE last_seen < ?').get(q.staleBefore) as { n: number }).n : undefined
    const rows = (after !== undefined
      ? this.db.sql.prepare('SELECT * FROM hosts WHERE host_id > ? ORDER BY host_id LIMIT ?').all(after, limit + 1)
      : this.db.sql.prepare('SELECT * FROM hosts ORDER BY host_id LIMIT ?').all(limit + 1)) as HostDbRow[]
    const items = rows.slice(0, limit).map(toHost)
    const last = items[items.length - 1]
    const nextCursor = rows.length > limit && last !== undefined ? Buffer.from(JSON.stringify([last.hostId])).toString('base64url') : undefined
    return { items, total, stale, nextCursor }
  }

  get (hostId: string): HostRow | undefined {
    const r = this.db.sql.prepare('SELECT * FROM hosts WHERE host_id = ?').get(hostId) as HostDbRow | undefined
    return r === undefined ? undefined : toHost(r)
  }
}
