import t from 'tap'
import { startAgent, type AgentOptions } from '../../agent/index.js'
import { isPicketError } from '../../shared/errors.js'
import { unpackRecords } from '../../shared/codec.js'
import { VERSION } from '../../shared/version.js'
import { captureLog, crashingDecoder, firstDifference, range, receivedIds, waitForStats } from '../helpers/agent.js'
import { TestCollector } from '../helpers/collector.js'

// The whole agent pipeline without a kernel: the seeded synthetic source in a
// real consumer thread → shared slabs → real piscina decoders → the disk
// spool → a real gRPC Ship stream to an in-test collector.

function base (t: Tap.Test, c: TestCollector, extra: Partial<AgentOptions> = {}): AgentOptions & { lines: Array<Record<string, unknown>> } {
  const { log, lines } = captureLog()
  return {
    collector: c.address,
    hostId: 'test-host',
    hostname: 'test-host.example',
    // t.testdir() empties the folder on each call: only once per test
    dataDir: extra.dataDir ?? t.testdir(),
    source: 'synth',
    decoders: 2,
    slabBytes: 32 * 1024, // ~315 records per batch: many batches from few records
    backoffInitialMs: 50,
    backoffMaxMs: 400,
    statsIntervalMs: 100,
    shutdownTimeoutMs: 2000,
    logger: log,
    lines,
    ...extra,
  }
}

function contiguous (seqs: number[]): boolean {
  const s = [...seqs].sort((a, b) => a - b)
  return s.every((v, i) => v === i + 1)
}

t.test('delivers every record once, in capture order, with seq contiguous from 1', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const N = 30_000
  const agent = await startAgent(base(t, c, { synth: { seed: 11, total: N } }))
  await c.waitFor(() => c.acceptedRecords >= N, 20_000, `${N} records`)
  const final = await agent.stop()
  const seqs = c.accepted.map(b => b.seq)
  t.ok(seqs.length > 50, `${seqs.length} batches`)
  t.same(seqs, range(1, seqs.length), 'seq 1, 2, 3, … in arrival order')
  const ids = receivedIds(c)
  t.equal(firstDifference(ids, range(0, N)), 'none', 'every record, once, in the order it was captured')
  const first = c.accepted[0]
  t.equal(first.host_id, 'test-host')
  t.equal(first.hostname, 'test-host.example')
  t.equal(first.agent_version, VERSION)
  t.ok(Math.abs(first.sent_at_ms! - Date.now()) < 60_000, 'sent_at_ms is wall-clock ms')
  t.same(first.drops, { kernel_reserve: 0, kernel_recursion: 0, slab_starvation: 0, spool_eviction: 0, decode_error: 0, refused: 0 }, 'drop counters travel with every batch')
  for (const b of c.accepted) if (unpackRecords(b.records).length !== b.count) t.fail(`batch ${b.seq}: count ${b.count} does not match its records`)
  const captured = c.accepted.map(b => b.captured_total!)
  t.ok(captured.every((v, i) => i === 0 || v >= captured[i - 1]), 'captured_total never goes down')
  const rec = c.records()[0] as { device: { uid: string, hostname: string }, metadata: { product: { name: string, version: string } }, class_uid: number }
  t.same(rec.device.uid, 'test-host', 'records carry the host id')
  t.same(rec.device.hostname, 'test-host.example')
  t.same(rec.metadata.product, { name: 'Picket', vendor_name: 'Picket', version: VERSION })
  t.equal(final.captured, N)
  t.equal(final.shipper.ackedRecords, N)
  t.equal(final.spool.pendingBatches, 0)
  t.equal(final.decoder.retries, 0)
})

t.test('slabs: a fixed pool, reused; with none free the consumer stops draining, the ring drops, and the drops are counted', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  // 2 slabs of 39 records, one decoder, and records arriving far faster than
  // 39-record tasks can be turned around: the consumer must starve
  const agent = await startAgent(base(t, c, {
    slabs: 2,
    slabBytes: 4096,
    decoders: 1,
    lingerMs: 1,
    synth: { rate: 100_000, total: 100_000, ringBytes: 1000 * 104 },
  }))
  const s = await waitForStats(agent, s => s.consumers[0].synth?.exhausted === true && s.spool.pendingBatches === 0 && s.decoder.pending === 0, 20_000, 'the stream to end and drain')
  await new Promise(resolve => setTimeout(resolve, 250)) // one more stats interval books the last kernel drops
  const f = await agent.stop()
  const consumer = f.consumers[0]
  const k = f.kernel!
  t.ok(consumer.starvationEvents > 0, `starved ${consumer.starvationEvents} times, ${Math.round(consumer.starvationMs)} ms`)
  t.ok(consumer.slabsHandedOff > 2 * 2, `the same 2 slabs carried ${consumer.slabsHandedOff} batches`)
  t.equal(consumer.freeSlabs, 2, 'every slab came back')
  t.ok(k.reset.reserveFailed > 0, `the ring overflowed: ${k.reset.reserveFailed} drops`)
  t.equal(f.drops.slab_starvation + f.drops.kernel_reserve, k.reset.reserveFailed, 'every ring drop is booked once, under one cause')
  t.ok(f.drops.slab_starvation > 0, 'drops while starved are booked as slab_starvation')
  t.equal(f.captured + k.reset.reserveFailed, 100_000, 'captured + dropped = generated')
  t.equal(c.acceptedRecords, f.captured, 'everything captured was delivered')
  t.equal(firstDifference(receivedIds(c), range(0, f.captured)), 'none', 'in order, no gaps among captured ids')
  const last = c.accepted.at(-1)!
  t.ok(last.drops!.slab_starvation! + last.drops!.kernel_reserve! > 0, 'the batches carry the drop counters')
  t.ok(s.captured > 0)
})

t.test('a decoder worker that dies mid-task: its slab is decoded again, no record lost', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const N = 20_000
  const opts = base(t, c, { synth: { total: N }, decodeWorker: crashingDecoder(5) })
  const agent = await startAgent(opts)
  await c.waitFor(() => c.acceptedRecords >= N, 20_000, `${N} records`)
  const f = await agent.stop()
  t.equal(f.decoder.retries, 1, 'one task was retried')
  t.ok(opts.lines.some(l => /decoder worker died mid-task/.test(String(l.msg))), 'and it was logged')
  t.equal(f.drops.decode_error, 0)
  t.equal(firstDifference(receivedIds(c), range(0, N)), 'none', 'every record exactly once, in order')
  t.ok(contiguous(c.accepted.map(b => b.seq)))
})

t.test('a REFUSED batch is never resent and its records count as refused drops', async t => {
  const c = await TestCollector.start({ mode: 'refuse', refuse: b => b.seq % 4 === 0 })
  t.teardown(() => c.close())
  const N = 10_000
  const opts = base(t, c, { synth: { total: N } })
  const agent = await startAgent(opts)
  await c.waitFor(() => c.acceptedRecords + c.refused.reduce((n, b) => n + b.count, 0) >= N, 20_000, 'every batch answered')
  const f = await agent.stop()
  const refusedRecords = c.refused.reduce((n, b) => n + b.count, 0)
  t.ok(c.refused.length > 3)
  t.equal(f.drops.refused, refusedRecords, 'refused drops = records in refused batches')
  t.equal(f.shipper.refusedBatches, c.refused.length)
  for (const b of c.refused) t.equal(c.arrivals.filter(a => a.seq === b.seq).length, 1, `refused seq ${b.seq} was sent once`)
  t.ok(opts.lines.some(l => l.level === 50 && l.limit === 'max_batch_records'), 'the refusal is logged with the limit')
  const last = c.arrivals.at(-1)!
  t.ok(last.drops!.refused! > 0, 'later batches carry the refused count')
  t.equal(f.spool.pendingBatches, 0, 'refused batches leave the spool')
})

t.test('a RETRY ack means: send it again later', async t => {
  const c = await TestCollector.start({ mode: 'retry', retry: b => b.seq === 3 })
  t.teardown(() => c.close())
  const N = 5000
  const agent = await startAgent(base(t, c, { synth: { total: N } }))
  await c.waitFor(() => c.acceptedRecords >= N, 20_000, `${N} records`)
  const f = await agent.stop()
  t.equal(c.arrivals.filter(a => a.seq === 3).length >= 2, true, 'seq 3 arrived again')
  t.equal(f.shipper.retryAcks, 1)
  t.ok(contiguous(c.accepted.map(b => b.seq)), 'all seqs accepted')
  t.same([...receivedIds(c)].sort((a, b) => a! - b!), range(0, N), 'every record exactly once')
})

t.test('collector outage: batches wait in the spool, the agent reconnects with backoff, every record arrives exactly once, in order', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const N = 40_000
  const opts = base(t, c, { synth: { rate: 20_000, total: N } })
  const agent = await startAgent(opts)
  await c.waitFor(() => c.accepted.length >= 5, 10_000, 'the first batches')
  await c.kill()
  const during = await waitForStats(agent, s => !s.shipper.connected && s.spool.pendingBatches >= 5, 10_000, 'batches piling up in the spool')
  t.ok(during.spool.pendingBatches >= 5, `${during.spool.pendingBatches} batches wait in the spool`)
  await new Promise(resolve => setTimeout(resolve, 700))
  await c.listen()
  await c.waitFor(() => c.acceptedRecords >= N, 20_000, `${N} records after the outage`)
  const f = await agent.stop()
  t.ok(f.shipper.reconnects >= 1, `reconnected (${f.shipper.reconnects} attempts)`)
  t.ok(opts.lines.some(l => /not reachable|stream failed|closed the Ship stream/.test(String(l.msg)) && typeof l.retryInMs === 'number'), 'the outage and the backoff are logged')
  const seqs = c.accepted.map(b => b.seq)
  t.same(seqs, range(1, seqs.length), 'accepted in seq order, each seq once')
  t.equal(firstDifference(receivedIds(c), range(0, N)), 'none', 'every record exactly once, in order')
  t.equal(f.drops.spool_eviction, 0)
})

t.test('a stalled collector: the in-flight window and the spool stay bounded, evictions are counted, the rest is delivered later', async t => {
  const c = await TestCollector.start({ mode: 'stall' })
  t.teardown(() => c.close())
  const N = 60_000
  const agent = await startAgent(base(t, c, {
    window: 4,
    slabBytes: 16 * 1024,
    spoolMaxBytes: 1 << 20,
    spoolSegmentBytes: 128 << 10,
    ackTimeoutMs: 60_000,
    synth: { total: N },
  }))
  const s = await waitForStats(agent, s => s.captured >= N && s.decoder.pending === 0 && s.decoder.reorder === 0, 20_000, 'all records captured')
  t.ok(s.shipper.inflight <= 4, `in flight: ${s.shipper.inflight} ≤ window 4`)
  t.equal(c.arrivals.length, 4, 'the stalled collector got one window of batches, no more')
  t.ok(s.spool.bytes <= 1 << 20, `spool ${s.spool.bytes} bytes ≤ 1 MiB`)
  t.ok(s.drops.spool_eviction > 0, `evicted records counted: ${s.drops.spool_eviction}`)
  c.unstall()
  const f = await waitForStats(agent, s => s.spool.pendingBatches === 0, 20_000, 'the spool to drain')
  await agent.stop()
  const delivered = c.acceptedRecords
  t.equal(delivered + f.drops.spool_eviction, N, 'delivered + evicted = captured, nothing else lost')
  const ids = receivedIds(c)
  t.ok(ids.every((v, i) => i === 0 || v! > ids[i - 1]!), 'what arrives is in capture order')
})

t.test('seq stays contiguous across a restart on the same data folder', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const dataDir = t.testdir()
  const a = await startAgent(base(t, c, { dataDir, synth: { total: 3000 } }))
  await c.waitFor(() => c.acceptedRecords >= 3000)
  await a.stop()
  const lastA = c.accepted.at(-1)!.seq
  const b = await startAgent(base(t, c, { dataDir, synth: { startId: 3000, total: 3000 } }))
  await c.waitFor(() => c.acceptedRecords >= 6000)
  await b.stop()
  t.equal(c.accepted.find(x => x.receivedAt >= 0 && x.seq === lastA + 1)?.seq, lastA + 1, 'the second run continues at the next seq')
  t.same(c.accepted.map(x => x.seq), range(1, c.accepted.length), 'one contiguous sequence over both runs')
  t.equal(firstDifference(receivedIds(c), range(0, 6000)), 'none')
  t.equal(c.duplicates, 0, 'nothing was sent twice')
})

t.test('stop() flushes what is in flight; what the collector never acked stays spooled and the next start replays it', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const dataDir = t.testdir()
  const N = 8000
  const a = await startAgent(base(t, c, { dataDir, shutdownTimeoutMs: 300, synth: { rate: 10_000, total: N } }))
  await c.waitFor(() => c.accepted.length >= 3, 10_000, 'the first batches')
  await c.kill() // the collector goes away while the agent still captures
  await waitForStats(a, s => s.captured >= N, 10_000)
  const fa = await a.stop()
  const deliveredByA = c.acceptedRecords
  t.equal(fa.spooledRecords, N, 'stop decoded and spooled every captured record')
  t.ok(fa.spool.pendingBatches > 0, `${fa.spool.pendingBatches} batches left unacked in the spool`)
  // a batch the collector took just before it died may lack its ack: it stays too (and comes back DUPLICATE)
  t.ok(fa.spool.pendingRecords >= N - deliveredByA, 'every undelivered record is spooled')
  await c.listen()
  const bStart = Date.now()
  const b = await startAgent(base(t, c, { dataDir, synth: { total: 0 } }))
  await c.waitFor(() => c.acceptedRecords >= N, 10_000, 'the replay')
  const fb = await b.stop()
  t.equal(fb.spool.pendingBatches, 0)
  t.equal(c.arrivals.filter(x => x.receivedAt >= bStart).length, fa.spool.pendingBatches, 'the next start sent exactly the spooled batches')
  t.equal(firstDifference(receivedIds(c), range(0, N)), 'none', 'replayed in order, nothing lost')
  t.same(c.accepted.map(x => x.seq), range(1, c.accepted.length), 'seq contiguous over both runs')
})

t.test('control plane and metrics: stats and reconfiguration over comlink, Prometheus /metrics', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const agent = await startAgent(base(t, c, { metricsPort: 0, synth: { total: 5000 } }))
  t.teardown(() => agent.stop())
  t.match(agent.metricsUrl, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
  await c.waitFor(() => c.acceptedRecords >= 5000)
  const tuning = await agent.reconfigure({ lingerMs: 42, drainTimeoutMs: 3 })
  t.same(tuning, [{ lingerMs: 42, drainTimeoutMs: 3 }], 'the consumer took the new tuning')
  const s = await agent.stats()
  t.equal(s.consumers[0].records, 5000, 'consumer stats come from the thread')
  const res = await fetch(agent.metricsUrl!)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /text\/plain/)
  const text = await res.text()
  const value = (re: RegExp): number => Number(re.exec(text)?.[1])
  t.equal(value(/^picket_agent_records_captured_total (\d+)/m), 5000)
  t.equal(value(/^picket_agent_records_acked_total (\d+)/m), 5000)
  t.equal(value(/^picket_agent_drops_total\{cause="spool_eviction"\} (\d+)/m), 0)
  for (const cause of ['kernel_reserve', 'kernel_recursion', 'slab_starvation', 'decode_error', 'refused']) t.match(text, `picket_agent_drops_total{cause="${cause}"}`)
  t.ok(value(/^picket_agent_ack_latency_seconds_count\{status="OK"\} (\d+)/m) >= 1, 'ack latency histogram')
  t.ok(value(/^picket_agent_spool_bytes (\d+)/m) > 0)
  for (const q of ['decoder', 'reorder', 'unsent', 'inflight']) t.match(text, `picket_agent_queue_depth{queue="${q}"}`)
  t.match(text, /^picket_agent_records_per_second /m)
  t.match(text, /^picket_agent_process_resident_memory_bytes \d+/m)
  t.equal((await fetch(agent.metricsUrl!.replace('/metrics', '/nope'))).status, 404)
})

t.test('options are validated once, each bad value named', async t => {
  try {
    await startAgent({ collector: 'nope', dataDir: t.testdir(), slabs: 1, spoolMaxBytes: 1 << 20, spoolSegmentBytes: 1 << 20, source: 'synth' })
    t.fail('must throw')
  } catch (err) {
    t.ok(isPicketError(err, 'PICKET_ERR_CONFIG'))
    const msg = (err as Error).message
    t.match(msg, /options\.collector must be HOST:PORT/)
    t.match(msg, /options\.slabs must be an integer from 2/)
    t.match(msg, /options\.spoolSegmentBytes .* at most half of options\.spoolMaxBytes/)
  }
})
