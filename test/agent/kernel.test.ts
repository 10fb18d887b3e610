import t from 'tap'
import { readFileSync } from 'node:fs'
import { startAgent } from '../../agent/index.js'
import type { NetworkActivity } from '../../shared/ocsf/types.js'
import { captureLog } from '../helpers/agent.js'
import { spawnPicket, type PicketProcess } from '../helpers/cli.js'
import { TestCollector } from '../helpers/collector.js'
import { requireReal } from '../helpers/env.js'
import { listeningPorts, nmap } from '../helpers/scan.js'

// The agent against the real kernel and a real scanner. Every scan targets
// loopback from its own source address in 127.0.0.0/8, so its records are
// told apart from anything else the host does meanwhile.

const ENV = { PICKET_TSX: '1' }

function fromSource (records: Array<Record<string, unknown>>, ip: string): NetworkActivity[] {
  return (records as unknown as NetworkActivity[]).filter(r => r.src_endpoint?.ip === ip)
}

/** port → number of Refuse records for it */
function refusedPorts (records: NetworkActivity[]): Map<number, number> {
  const m = new Map<number, number>()
  for (const r of records) if (r.activity_id === 5) m.set(r.dst_endpoint!.port!, (m.get(r.dst_endpoint!.port!) ?? 0) + 1)
  return m
}

function onceEach (m: Map<number, number>, ports: number[]): string[] {
  const wrong: string[] = []
  for (const p of ports) if (m.get(p) !== 1) wrong.push(`port ${p}: ${m.get(p) ?? 0} records`)
  return wrong
}

async function closedPorts (from: number, to: number): Promise<number[]> {
  const open = await listeningPorts('tcp')
  const out: number[] = []
  for (let p = from; p <= to; p++) if (!open.has(p)) out.push(p)
  return out
}

async function metrics (url: string): Promise<Record<string, number>> {
  const text = await (await fetch(url)).text()
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^(picket_agent_[a-z_]+(?:\{[^}]*\})?) (\S+)$/gm)) out[m[1]] = Number(m[2])
  return out
}

async function until (what: string, f: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

function agentProc (args: string[]): PicketProcess {
  return spawnPicket(['agent', '--source', 'kernel', '--metrics', '0', '--stats-interval', '100ms', ...args], { env: ENV })
}

async function metricsUrl (p: PicketProcess): Promise<string> {
  return (await p.waitFor(/"metrics":"(http:\/\/[^"]+)"/, { timeoutMs: 60_000 }))[1]
}

t.test('delivery: every record of a real nmap -sS reaches the collector, seq contiguous, same count as picket capture', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ss'] })) return
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const { log } = captureLog()
  const agent = await startAgent({ collector: c.address, hostId: 'kernel-delivery', dataDir: t.testdir(), source: 'kernel', logger: log })
  t.teardown(() => agent.stop())
  const cap = spawnPicket(['capture'], { env: ENV })
  t.teardown(() => cap.stop('SIGKILL'))
  await cap.waitFor(/capture: attached/, { timeoutMs: 60_000 })
  const closed = await closedPorts(1, 1000)
  await nmap({ type: '-sS', ports: '1-1000', source: '127.0.0.66' })
  await new Promise(resolve => setTimeout(resolve, 300))
  t.equal(await cap.stop('SIGINT'), 0, 'picket capture exits cleanly')
  const f = await agent.stop()
  const captured = cap.stdout().split('\n').filter(l => l.length > 0).map(l => JSON.parse(l) as Record<string, unknown>)
  const viaCapture = fromSource(captured, '127.0.0.66')
  const viaAgent = fromSource(c.records(), '127.0.0.66')
  t.ok(viaAgent.length >= closed.length, `${viaAgent.length} records from the scanner for ${closed.length} closed ports`)
  t.equal(viaAgent.length, viaCapture.length, 'the agent delivered as many records as picket capture printed')
  t.same(onceEach(refusedPorts(viaAgent), closed), [], 'one Refuse per closed port, delivered once')
  t.same(c.accepted.map(b => b.seq), Array.from({ length: c.accepted.length }, (_, i) => i + 1), 'seq 1.. contiguous')
  t.equal(c.duplicates, 0)
  t.equal(f.spool.pendingBatches, 0, 'everything acked')
  t.equal(f.drops.kernel_reserve + f.drops.slab_starvation + f.drops.decode_error + f.drops.spool_eviction, 0, 'no drops')
  t.equal(f.shipper.ackedRecords, f.captured, 'every captured record was acked')
  t.equal(viaAgent[0].device?.uid, 'kernel-delivery')
})

t.test('collector outage during a scan: the records wait in the spool and arrive exactly once, in seq order, once it is back', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ss'] })) return
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const { log } = captureLog()
  const agent = await startAgent({ collector: c.address, hostId: 'kernel-outage', dataDir: t.testdir(), source: 'kernel', logger: log, backoffInitialMs: 50, backoffMaxMs: 500, statsIntervalMs: 100 })
  t.teardown(() => agent.stop())
  await c.waitFor(() => c.streams > 0, 10_000, 'the agent to connect')
  await c.kill()
  const closed = await closedPorts(1, 1000)
  await nmap({ type: '-sS', ports: '1-1000', source: '127.0.0.67' })
  await until('the scan in the spool', async () => (await agent.stats()).spool.pendingRecords >= closed.length, 10_000)
  const during = await agent.stats()
  t.notOk(during.shipper.connected, 'the collector is down')
  t.ok(during.spool.pendingBatches > 0, `${during.spool.pendingRecords} records in ${during.spool.pendingBatches} spooled batches`)
  await c.listen()
  await until('the spool to drain', async () => (await agent.stats()).spool.pendingBatches === 0, 20_000)
  const f = await agent.stop()
  const got = fromSource(c.records(), '127.0.0.67')
  t.same(onceEach(refusedPorts(got), closed), [], 'every closed port exactly once')
  t.equal(got.filter(r => r.activity_id === 5).length, closed.length, 'and nothing else refused')
  t.same(c.accepted.map(b => b.seq), Array.from({ length: c.accepted.length }, (_, i) => i + 1), 'accepted in seq order, no gaps, none twice')
  t.ok(f.shipper.reconnects >= 1)
  t.equal(f.drops.spool_eviction + f.drops.kernel_reserve, 0)
})

t.test('SIGKILL with the scan spooled: the restarted agent replays it, nothing lost', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap', 'ss'] })) return
  const c = await TestCollector.start({ mode: 'stall' })
  t.teardown(() => c.close())
  const data = t.testdir()
  const args = ['--collector', c.address, '--data', data, '--host-id', 'kernel-kill', '--window', '2', '--backoff-max', '500ms']
  const p = agentProc(args)
  t.teardown(() => p.stop('SIGKILL'))
  const url = await metricsUrl(p)
  const closed = await closedPorts(1, 1000)
  await nmap({ type: '-sS', ports: '1-1000', source: '127.0.0.68' })
  await until('the scan spooled', async () => {
    const m = await metrics(url)
    return m.picket_agent_records_spooled_total >= closed.length && m.picket_agent_records_spooled_total === m.picket_agent_records_captured_total
  })
  t.equal(await p.stop('SIGKILL'), 'SIGKILL', 'killed with batches in the spool')
  await c.close()
  const fresh = await TestCollector.start({ port: c.port })
  t.teardown(() => fresh.close())
  const q = agentProc(args)
  t.teardown(() => q.stop('SIGKILL'))
  await q.waitFor(/spool holds unacked batches; they will be sent first/, { timeoutMs: 60_000 })
  await until('the replay', () => fromSource(fresh.records(), '127.0.0.68').length >= closed.length, 30_000)
  t.equal(await q.stop('SIGTERM'), 0)
  const got = fromSource(fresh.records(), '127.0.0.68')
  t.same(onceEach(refusedPorts(got), closed), [], 'every closed port exactly once after the restart')
  t.same(fresh.accepted.map(b => b.seq), Array.from({ length: fresh.accepted.length }, (_, i) => i + 1), 'seq from 1, as first assigned, contiguous')
  t.equal(fresh.duplicates, 0)
})

t.test('bounded memory: a flood with a stalled collector keeps RSS bounded, and every drop is counted', async t => {
  if (!requireReal(t, { bpf: true, commands: ['nmap'] })) return
  const c = await TestCollector.start({ mode: 'stall' })
  t.teardown(() => c.close())
  // the network class alone: the accounting below is exact only on a ring the test alone fills
  const p = agentProc(['--collector', c.address, '--data', t.testdir(), '--host-id', 'kernel-flood', '--spool-max', '8MiB', '--spool-segment', '1MiB', '--ring-bytes', '1MiB', '--ack-timeout', '10m', '--class', 'network'])
  t.teardown(() => p.stop('SIGKILL'))
  const url = await metricsUrl(p)
  const pid = p.proc.pid!
  const rss: number[] = []
  const sample = (): void => {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    if (m !== null) rss.push(Number(m[1]) * 1024)
  }
  const sampler = setInterval(sample, 100)
  t.teardown(() => clearInterval(sampler))
  for (let round = 0; round < 4; round++) {
    await nmap({ type: '-sS', ports: '1-65535', source: '127.0.0.69', extra: ['--min-rate', '40000', '--max-retries', '0'] })
  }
  // the summaries of folded repeats follow the flood by up to two fold
  // windows (1 s each), and the kernel counters are read once a second
  await new Promise(resolve => setTimeout(resolve, 3500))
  clearInterval(sampler)
  sample()
  const m = await metrics(url)
  const mb = (n: number): string => `${Math.round(n / 1048576)} MiB`
  const third = Math.floor(rss.length / 3)
  const early = Math.max(...rss.slice(0, third))
  const late = Math.max(...rss.slice(2 * third))
  t.ok(m.picket_agent_records_captured_total > 200_000, `flooded: ${m.picket_agent_records_captured_total} records captured`)
  t.ok(Math.max(...rss) < 600 * 1048576, `RSS peaked at ${mb(Math.max(...rss))}`)
  t.ok(late < early + 96 * 1048576, `RSS does not keep growing (first third ≤ ${mb(early)}, last third ≤ ${mb(late)})`)
  t.ok(m.picket_agent_spool_bytes <= 8 * 1048576, `spool ${mb(m.picket_agent_spool_bytes)} within its 8 MiB bound`)
  const drop = (cause: string): number => m[`picket_agent_drops_total{cause="${cause}"}`]
  t.ok(drop('spool_eviction') > 0, `evicted from the spool: ${drop('spool_eviction')} records`)
  // every event the kernel matched is accounted for, under exactly one name. The
  // scrape itself is a loopback connection the agent captures (its connect and its
  // accept: two records); an agent that keeps up may count them as captured before
  // they are spooled and before its last read of the kernel counters, or the
  // kernel may count them before the consumer (woken by the first record into
  // the empty ring, then lingering) has captured them.
  const kernel = m.picket_agent_kernel_events_total
  const captured = m.picket_agent_records_captured_total
  const scrape = captured - m.picket_agent_records_spooled_total - drop('decode_error')
  t.ok(scrape >= 0 && scrape <= 2, `captured = spooled + decode errors (+ the scrape's own ${scrape} records, still being decoded)`)
  const ringDrops = drop('kernel_reserve') + drop('slab_starvation')
  t.ok(Math.abs(captured + ringDrops - kernel) <= 2, `kernel events ${kernel} = captured ${captured} + ring drops ${ringDrops} (± the scrape's own 2 records)`)
  t.equal(m.picket_agent_records_acked_total, 0, 'the stalled collector acked nothing')
  t.equal(m.picket_agent_spool_pending_records + drop('spool_eviction') + m.picket_agent_evicted_inflight_records, m.picket_agent_records_spooled_total, 'spooled = still pending + evicted (+ evicted while in flight, awaiting their ack)')
  t.equal(await p.stop('SIGTERM'), 0, 'and it still shuts down cleanly')
})
