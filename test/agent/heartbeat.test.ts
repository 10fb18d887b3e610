import t from 'tap'
import { startAgent } from '../../agent/index.js'
import { startBackend } from '../../backend/server.js'
import { unpackRecords } from '../../shared/codec.js'
import { captureLog } from '../helpers/agent.js'
import { TestCollector } from '../helpers/collector.js'

// A quiet host must not look dead: with nothing captured, the agent sends an
// empty batch (count 0, drop counters attached) every --heartbeat.

t.test('a quiet agent sends heartbeats: empty batches in the seq stream, with drop counters', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const { log } = captureLog()
  const agent = await startAgent({
    collector: c.address, hostId: 'quiet-host', dataDir: t.testdir(), source: 'synth',
    synth: { seed: 3, total: 50 }, statsIntervalMs: 50, heartbeatMs: 300, logger: log, decoders: 1,
  })
  t.teardown(async () => { await agent.stop() })
  // the 50 records and two heartbeats: on a loaded machine the first decode can take longer than a heartbeat
  await c.waitFor(() => c.acceptedRecords >= 50 && c.accepted.filter(b => b.count === 0).length >= 2, 20_000, 'the records and two heartbeats')
  const beats = c.accepted.filter(b => b.count === 0)
  for (const b of beats) {
    t.same(unpackRecords(b.records), [], `heartbeat seq ${b.seq} decodes on its own to an empty array`)
    t.ok(b.drops !== undefined && typeof b.drops.kernel_reserve === 'number', 'carries the drop counters')
  }
  const seqs = c.accepted.map(b => b.seq)
  t.same(seqs, seqs.map((_, i) => i + 1), 'heartbeats take their place in the contiguous seq')
  t.equal(c.acceptedRecords, 50, 'the records themselves, once')
  const gaps = beats.slice(1).map((b, i) => b.receivedAt - beats[i].receivedAt)
  t.ok(gaps.every(g => g >= 250), `no more often than the heartbeat (${gaps.join(', ')} ms)`)
})

t.test('the backend accepts heartbeats and keeps the quiet host fresh', async t => {
  const backend = await startBackend({ listen: '127.0.0.1:0', http: false, db: `${t.testdir()}/picket.db`, workers: 1, logger: captureLog('warn').log })
  t.teardown(async () => { await backend.close() })
  const agent = await startAgent({
    collector: backend.collector.address, hostId: 'quiet-host', dataDir: t.testdir(), source: 'synth',
    synth: { seed: 3, total: 0 }, statsIntervalMs: 50, heartbeatMs: 200, logger: captureLog('warn').log, decoders: 1,
  })
  t.teardown(async () => { await agent.stop() })
  const end = Date.now() + 10_000
  let host = backend.store.getHost('quiet-host')
  while ((host === undefined || host.batches < 2) && Date.now() < end) {
    await new Promise(resolve => setTimeout(resolve, 100))
    await backend.flush()
    host = backend.store.getHost('quiet-host')
  }
  t.ok(host !== undefined, 'the host is known from heartbeats alone')
  t.ok((host?.batches ?? 0) >= 2, `heartbeat batches accepted (${host?.batches})`)
  t.equal(host?.records, 0, 'no records')
  const s = await agent.stats()
  t.equal(s.shipper.refusedBatches ?? 0, 0, 'none refused')
})
