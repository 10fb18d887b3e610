import { DROP_CAUSES, zeroDrops } from '../../shared/enums.js'
import { INSTANCE_TTL_MS, MAX_INSTANCES_PER_HOST, type InstanceFloor } from '../detection/seq.js'
import { dropColumn, StorePart, type StoreDb } from './db.js'
import type { HostDelta, HostRow } from './types.js'

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

  /** The dedup floors by host id, most recent instance first; on a writable store, floors past their age are deleted. */
  lastSeqs (now = Date.now()): Map<string, InstanceFloor[]> {
    const before = now - INSTANCE_TTL_MS
    if (!this.db.readonly) this.writes().expire.run(before)
    const rows = this.db.sql.prepare('SELECT host_id, instance, last_seq, last_seen FROM seq_floors WHERE last_seq > 0 AND last_seen >= ? ORDER BY host_id, last_seen DESC')
      .all(before) as Array<{ host_id: string, instance: string, last_seq: number, last_seen: number }>
    const out = new Map<string, InstanceFloor[]>()
    for (const r of rows) {
      let floors = out.get(r.host_id)
      if (floors === undefined) out.set(r.host_id, floors = [])
      floors.push({ instance: r.instance, lastSeq: r.last_seq, lastSeen: r.last_seen })
    }
    return out
  }

  list (): HostRow[] {
    return (this.db.sql.prepare('SELECT * FROM hosts ORDER BY host_id').all() as HostDbRow[]).map(toHost)
  }

  get (hostId: string): HostRow | undefined {
    const r = this.db.sql.prepare('SELECT * FROM hosts WHERE host_id = ?').get(hostId) as HostDbRow | undefined
    return r === undefined ? undefined : toHost(r)
  }
}
