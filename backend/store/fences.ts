import { StorePart, type StoreDb } from './db.js'

// Fencing for cluster mode: a detection node stamps what it sends with the
// lease token it holds on the partition (the KV revision at which it took the
// lease, larger for each later owner). The store keeps the largest token seen
// per partition and refuses anything older, so an owner that stalled past
// its lease cannot write after its successor has. Kept in the meta table: no
// schema change for a store that never runs in cluster mode.

const key = (partition: number): string => `fence.${partition}`

function prepareWrites (sql: StoreDb['sql']) {
  return {
    get: sql.prepare('SELECT value FROM meta WHERE key = ?'),
    set: sql.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
  }
}

export class Fences extends StorePart<ReturnType<typeof prepareWrites>> {
  constructor (db: StoreDb) {
    super(db, prepareWrites)
  }

  /** True when `token` is at least the partition's fence (which then moves up to it); false: a stale owner, refused. */
  admit (partition: number, token: number): boolean {
    const st = this.writes()
    return this.db.sql.transaction(() => {
      const cur = st.get.get(key(partition)) as { value: string } | undefined
      if (cur !== undefined && Number(cur.value) > token) return false
      if (cur === undefined || Number(cur.value) < token) st.set.run(key(partition), String(token))
      return true
    })()
  }

  /** Each partition's fence: the lease token of the last owner that wrote. */
  all (): Map<number, number> {
    const rows = this.db.sql.prepare("SELECT key, value FROM meta WHERE key LIKE 'fence.%'").all() as Array<{ key: string, value: string }>
    return new Map(rows.map(r => [Number(r.key.slice(6)), Number(r.value)]))
  }
}
