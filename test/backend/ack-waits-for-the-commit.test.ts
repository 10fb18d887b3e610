import Database from 'better-sqlite3'
import t from 'tap'
import { join } from 'node:path'
import { packRecords } from '../../shared/codec.js'
import type { Ack, Batch } from '../../shared/proto/index.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { spawnBackend, storedFindings, waitUntil } from './helpers/backend-process.js'
import { ports, probeRecord, tempDir } from './helpers/records.js'

// Defect 14 of issue 11: a batch was acked before the findings it caused
// were committed, so a backend killed in between lost the finding while the
// agent, holding an OK, had already dropped the batch. Here the test holds
// the store's write lock (the backend's commit waits on it), sends a scan
// whose one batch crosses the threshold, sees detection run and the commit
// fail, checks that no ack came, SIGKILLs the backend, lets go of the lock,
// restarts the backend on the same store and resends the unacked batch, as
// an agent does. The finding must then be there, exactly once.

t.test('a batch is acked only after its finding is committed: SIGKILL between detection and commit loses nothing', async t => {
  const tmp = tempDir('picket-durable-ack-')
  t.teardown(tmp.cleanup)
  const db = join(tmp.dir, 'picket.db')
  const first = await spawnBackend(db)
  t.teardown(async () => { if (first.alive()) await first.stop() })

  const lock = new Database(db)
  t.teardown(() => { if (lock.open) lock.close() })
  lock.exec('BEGIN IMMEDIATE')

  const host = 'durable-host'
  const T = Date.now()
  const batch: Batch = {
    host_id: host,
    seq: 1,
    count: 20,
    records: packRecords(ports(20).map((port, i) => probeRecord(host, { t: T + i, src: '198.51.100.90', port }))),
    hostname: host,
    agent_version: 'test',
  }
  const client1 = connectCollector(first.collector)
  const s1 = new AgentStream(client1, host)
  let ack: Ack | undefined
  void s1.sendRaw(batch).then(a => { ack = a }, () => {})

  // the store's busy timeout runs out while the lock is held: detection ran, the commit failed
  await first.proc.waitFor(/findings not written/, { timeoutMs: 30_000 })
  await new Promise(resolve => setTimeout(resolve, 1500))
  t.equal(ack, undefined, `no ack while the finding is not committed (got ${ack?.status ?? 'none'})`)

  first.proc.proc.kill('SIGKILL')
  t.equal(await first.proc.exited, 'SIGKILL')
  s1.abort('the backend was killed')
  client1.close()
  lock.exec('ROLLBACK')
  lock.close()
  t.equal(storedFindings(db, host).length, 0, 'nothing was committed before the kill')

  const second = await spawnBackend(db)
  t.teardown(async () => { if (second.alive()) await second.stop() })
  const client2 = connectCollector(second.collector)
  t.teardown(() => client2.close())
  const s2 = new AgentStream(client2, host)
  const again = await s2.sendRaw(batch)
  t.equal(again.status, 'OK', 'the resent batch is accepted, not taken for a duplicate')
  await s2.end()
  await waitUntil(() => storedFindings(db, host).length > 0, 'the finding of the resent batch')
  await new Promise(resolve => setTimeout(resolve, 500))
  const found = storedFindings(db, host)
  t.equal(found.length, 1, 'exactly one finding for the scan')
  t.ok(found[0].portCount >= 15, `it holds the crossing (${found[0].portCount} ports so far)`)
  t.same(found[0].sources, ['198.51.100.90'])
})
