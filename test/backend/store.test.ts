import Database from 'better-sqlite3'
import t from 'tap'
import { join } from 'node:path'
import { isPicketError } from '../../shared/errors.js'
import type { FindingEvent } from '../../backend/detection/finding.js'
import { AlertStore, type FindingChange, type HostRow } from '../../backend/store/index.js'
import { EngineRig, ports, SHIPPED_RULES, tempDir } from './helpers/records.js'

// The alert store on real SQLite files in a temp folder, fed with findings
// the real engine produced.

const T0 = 1_800_000_000_000

/** Real finding events: a port scan of `host` from `src`, created, updated, closed. */
function scanEvents (host: string, src: string, at: number): FindingEvent[] {
  const rig = new EngineRig(SHIPPED_RULES, { quietMs: 10_000, updateIntervalMs: 1000 })
  rig.send(host, ports(15).map((p, i) => ({ t: at + i, src, port: p })), at + 100)
  rig.send(host, ports(5, 5000).map((p, i) => ({ t: at + 200 + i, src, port: p })), at + 300)
  rig.tick(at + 1500)
  rig.tick(at + 20_000)
  return rig.findings
}

t.test('findings: Create, Update and Close land in one row, in WAL mode, with events after commit', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const path = join(tmp.dir, 'sub', 'picket.db')
  const store = AlertStore.open(path)
  t.teardown(() => store.close())
  const probe = new Database(path, { readonly: true })
  t.equal(probe.pragma('journal_mode', { simple: true }), 'wal')
  probe.close()

  const evs = scanEvents('st-host', '198.51.100.30', T0)
  t.same(evs.map(e => e.activity), ['create', 'update', 'close'])
  const seen: FindingChange[] = []
  store.on('finding', c => seen.push(c))
  const created = store.applyFindingEvents([evs[0]], T0 + 1)
  t.equal(created[0].kind, 'created')
  t.equal(seen.length, 1)
  t.equal(seen[0].finding.portCount, 15)
  t.equal(seen[0].finding.state, 'open')
  store.applyFindingEvents([evs[1]], T0 + 2)
  const f1 = store.getFinding(evs[0].summary.id)
  t.equal(f1?.portCount, 20, 'updated in place')
  t.equal(f1?.createdAt, T0 + 1)
  t.equal(f1?.updatedAt, T0 + 2)
  t.equal(f1?.finding.activity_id, 2)
  store.applyFindingEvents([evs[2]], T0 + 3)
  const f2 = store.getFinding(evs[0].summary.id)
  t.equal(f2?.state, 'closed')
  t.equal(f2?.closedAt, T0 + 3)
  t.same(seen.map(c => c.kind), ['created', 'updated', 'closed'])
  t.ok((seen[2].finding.changeSeq) > seen[1].finding.changeSeq, 'change numbers grow')
  t.equal(store.listFindings().total, 1, 'one incident, one row')
  t.same(store.changesSince(seen[0].finding.changeSeq).map(f => f.id), [evs[0].summary.id], 'what an SSE client missed')
})

t.test('triage: status with history (who, when, from → to, note); the OCSF status follows', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const store = AlertStore.open(join(tmp.dir, 'picket.db'))
  t.teardown(() => store.close())
  const evs = scanEvents('tr-host', '198.51.100.31', T0)
  store.applyFindingEvents([evs[0]], T0)
  const id = evs[0].summary.id
  const triaged: FindingChange[] = []
  store.on('finding', c => { if (c.kind === 'triaged') triaged.push(c) })
  const a = store.setStatus(id, { status: 'in_progress', actor: 'alice', note: 'looking' }, T0 + 10)
  t.equal(a.status, 'in_progress')
  t.equal(a.finding.status_id, 2)
  t.equal(a.finding.status, 'In Progress')
  store.setStatus(id, { status: 'false_positive', actor: 'bob', note: 'our scanner' }, T0 + 20)
  const hist = store.history(id)
  t.same(hist.map(h => [h.actor, h.from, h.to, h.note, h.at]), [
    ['picket', null, 'new', 'raised by rule picket_t1046_port_scan', T0],
    ['alice', 'new', 'in_progress', 'looking', T0 + 10],
    ['bob', 'in_progress', 'false_positive', 'our scanner', T0 + 20],
  ])
  t.equal(store.getFinding(id)?.finding.status_id, 3, 'false positive is OCSF Suppressed')
  t.equal(triaged.length, 2)
  // the detection plane keeps updating the incident; the people's status stays
  store.applyFindingEvents([evs[1]], T0 + 30)
  const after = store.getFinding(id)
  t.equal(after?.status, 'false_positive')
  t.equal(after?.finding.status_id, 3)
  t.equal(after?.portCount, 20)
  t.throws(() => store.setStatus('no-such-id', { status: 'resolved', actor: 'x' }), { code: 'PICKET_ERR_NOT_FOUND' })
  t.throws(() => store.setStatus(id, { status: 'done' as 'resolved', actor: 'x' }), { code: 'PICKET_ERR_VALIDATION', message: /not one of new, in_progress, resolved, false_positive/ })
  t.throws(() => store.setStatus(id, { status: 'resolved', actor: ' ' }), { code: 'PICKET_ERR_VALIDATION' })
})

t.test('listing: filters by status, host, source, technique, state, time and title; keyset pagination', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const store = AlertStore.open(join(tmp.dir, 'picket.db'))
  t.teardown(() => store.close())
  const ids: string[] = []
  for (let i = 0; i < 7; i++) {
    const evs = scanEvents(`ls-host-${i % 3}`, `198.51.100.${40 + i}`, T0 + i * 60_000)
    store.applyFindingEvents([evs[0]], T0 + i * 1000)
    ids.push(evs[0].summary.id)
  }
  store.setStatus(ids[1], { status: 'resolved', actor: 'a' })
  store.setStatus(ids[4], { status: 'resolved', actor: 'a' })
  t.equal(store.listFindings().total, 7)
  t.same(store.listFindings().items.map(f => f.id), [...ids].reverse(), 'newest first')
  t.same(store.listFindings({ status: 'resolved' }).items.map(f => f.id).sort(), [ids[1], ids[4]].sort())
  t.equal(store.listFindings({ status: ['new', 'resolved'] }).total, 7)
  t.equal(store.listFindings({ host: 'ls-host-0' }).total, 3)
  t.same(store.listFindings({ source: '198.51.100.45' }).items.map(f => f.id), [ids[5]])
  t.equal(store.listFindings({ technique: 'T1046' }).total, 7)
  t.equal(store.listFindings({ technique: 'T1059' }).total, 0)
  t.equal(store.listFindings({ state: 'closed' }).total, 0)
  t.equal(store.listFindings({ since: T0 + 5 * 60_000 }).total, 2, 'active at or after')
  t.equal(store.listFindings({ until: T0 + 60_000 + 10_000 }).total, 2, 'active at or before')
  t.equal(store.listFindings({ q: '198.51.100.42' }).total, 1, 'title search')
  t.equal(store.listFindings({ q: '%' }).total, 0, 'LIKE wildcards are literal')
  const seen: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const page = store.listFindings({ limit: 3, ...(cursor !== undefined ? { cursor } : {}) })
    t.equal(page.total, 7)
    seen.push(...page.items.map(f => f.id))
    cursor = page.nextCursor
    pages++
  } while (cursor !== undefined && pages < 10)
  t.equal(pages, 3)
  t.same(seen, [...ids].reverse(), 'pages cover every finding once, in order')
  t.throws(() => store.listFindings({ cursor: 'garbage' }), { code: 'PICKET_ERR_VALIDATION' })
  t.throws(() => store.listFindings({ limit: 0 }), { code: 'PICKET_ERR_VALIDATION' })
  t.throws(() => store.listFindings({ status: 'nope' as 'new' }), { code: 'PICKET_ERR_VALIDATION' })
})

t.test('hosts: counters add up, drops are the latest cumulative report, seqs persist', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const path = join(tmp.dir, 'picket.db')
  const store = AlertStore.open(path)
  const rows: HostRow[][] = []
  store.on('hosts', r => rows.push(r))
  store.recordHosts([{ hostId: 'h1', hostname: 'web-1', agentVersion: '0.1.0', lastSeen: T0, records: 100, batches: 2, bytes: 5000, recordsPerSec: 50, capturedTotal: 100, drops: { kernel_reserve: 3, slab_starvation: 1 }, refusedBatches: 1, duplicateBatches: 0 }])
  store.recordHosts([{ hostId: 'h1', lastSeen: T0 + 1000, records: 50, batches: 1, bytes: 2500, recordsPerSec: 60, drops: { kernel_reserve: 5 }, refusedBatches: 0, duplicateBatches: 2 }])
  const h = store.getHost('h1')
  t.equal(h?.hostname, 'web-1', 'an empty hostname keeps the known one')
  t.equal(h?.agentVersion, '0.1.0')
  t.equal(h?.records, 150)
  t.equal(h?.batches, 3)
  t.equal(h?.bytes, 7500)
  t.equal(h?.recordsPerSec, 60)
  t.equal(h?.lastSeen, T0 + 1000)
  t.equal(h?.firstSeen, T0)
  t.equal(h?.drops.kernel_reserve, 5, 'drops are cumulative on the agent: the latest report wins')
  t.equal(h?.drops.slab_starvation, 0)
  t.equal(h?.refusedBatches, 1)
  t.equal(h?.duplicateBatches, 2)
  t.equal(rows.length, 2)
  store.recordSeqs([{ hostId: 'h1', floors: [{ instance: 'a1', lastSeq: 42, lastSeen: T0 }] }], T0)
  store.recordSeqs([{ hostId: 'h1', floors: [{ instance: 'a1', lastSeq: 40, lastSeen: T0 + 1 }] }], T0)
  const floors = [['h1', [{ instance: 'a1', lastSeq: 42, lastSeen: T0 + 1 }]]]
  t.same([...store.lastSeqs(T0)], floors, 'the floor never goes back')
  t.equal(store.getHost('h1')?.lastSeq, 42, 'the host row shows the floor of its latest instance')
  store.close()
  const again = AlertStore.open(path)
  t.teardown(() => again.close())
  t.same([...again.lastSeqs(T0)], floors, 'persisted across a restart')
  t.same(again.floorsOf('h1', T0), floors[0][1], 'one host\'s floors, as the bridge reads them')
  t.equal(again.listHosts().total, 1)
})

t.test('read-only access (picket alerts) while the backend writes; missing or foreign files', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const path = join(tmp.dir, 'picket.db')
  const writer = AlertStore.open(path)
  t.teardown(() => writer.close())
  const reader = AlertStore.open(path, { readonly: true })
  t.teardown(() => reader.close())
  const evs = scanEvents('ro-host', '198.51.100.50', T0)
  writer.applyFindingEvents([evs[0]])
  t.equal(reader.listFindings().total, 1, 'the reader sees committed findings')
  t.throws(() => reader.setStatus(evs[0].summary.id, { status: 'resolved', actor: 'x' }), { code: 'PICKET_ERR_STORE', message: /read-only/ })
  try {
    AlertStore.open(join(tmp.dir, 'missing.db'), { readonly: true })
    t.fail('opened a missing store')
  } catch (err) {
    t.ok(isPicketError(err, 'PICKET_ERR_STORE'))
    t.match((err as Error).message, /no alert store at .*missing\.db: start the backend/)
  }
  const other = join(tmp.dir, 'other.db')
  new Database(other).exec('CREATE TABLE x (y)')
  t.throws(() => AlertStore.open(other, { readonly: true }), { code: 'PICKET_ERR_STORE', message: /not a Picket alert store/ })
})
