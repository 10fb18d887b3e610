import t from 'tap'
import { join } from 'node:path'
import { createLogger } from '../../shared/logger.js'
import { validateDetectionFinding } from '../../shared/ocsf/schema.js'
import { startBackend } from '../../backend/server.js'
import { injectScan } from '../../scripts/injector/index.js'
import { tempDir } from './helpers/records.js'

// The dedup floors persist in the store: after a backend restart, an agent
// replaying batches it already had acked (say the ack was lost) is answered
// DUPLICATE and nothing is counted twice.

t.test('a replay after a backend restart is recognised as duplicate', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const opts = { listen: '127.0.0.1:0', http: false as const, db: join(tmp.dir, 'p.db'), workers: 2, console: false as const, logger: createLogger('test-restart', { level: 'fatal', pretty: false }) }
  const shots = { hostId: 'rs-host', ports: 100, batchSize: 10, seed: 6 }
  const a = await startBackend(opts)
  const first = await injectScan({ collector: a.collector.address, ...shots })
  t.equal(first.batches.ok, 10)
  await a.close()

  const b = await startBackend(opts)
  t.teardown(b.close)
  t.equal(b.store.getHost('rs-host')?.lastSeq, 10, 'the floor was persisted on shutdown')
  const replay = await injectScan({ collector: b.collector.address, ...shots })
  t.equal(replay.batches.duplicate, 10, 'every replayed batch is a duplicate')
  const more = await injectScan({ collector: b.collector.address, ...shots, startSeq: 11, seed: 7, portBase: 2000 })
  t.equal(more.batches.ok, 10, 'new seqs are accepted')
  await b.flush()
  const f = b.store.listFindings({ host: 'rs-host' })
  t.equal(f.total, 2, 'the finding from before the restart, and one for the new scan (the windows start empty)')
  const [newer, older] = f.items
  t.equal(older.state, 'closed', 'the incident left open by the first run was closed at start-up')
  t.equal(older.finding.activity_id, 3)
  t.equal(older.finding.type_uid, 200403)
  t.equal((older.finding.unmapped as { picket: { closed_by: string } }).picket.closed_by, 'backend restart')
  t.same(validateDetectionFinding(older.finding), [], 'still valid OCSF')
  t.equal(newer.state, 'open')
  t.equal(b.store.getHost('rs-host')?.records, 200, 'each record counted once')
})
