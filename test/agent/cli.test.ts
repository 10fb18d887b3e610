import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pino from 'pino'
import { Spool } from '../../agent/ship/spool.js'
import { firstDifference, range, receivedIds } from '../helpers/agent.js'
import { spawnPicket, type PicketProcess } from '../helpers/cli.js'
import { TestCollector } from '../helpers/collector.js'

// `picket agent` as an operator runs it: a real process, real signals.
// PICKET_TSX=1 runs the TypeScript sources under test (not a stale dist/).

const ENV = { PICKET_TSX: '1', PICKET_LOG_LEVEL: 'info' }

function agentProc (args: string[], env: NodeJS.ProcessEnv = {}): PicketProcess {
  return spawnPicket(['agent', ...args], { env: { ...ENV, ...env } })
}

async function metricsUrl (p: PicketProcess): Promise<string> {
  const m = await p.waitFor(/"metrics":"(http:\/\/[^"]+)"/, { timeoutMs: 60_000 })
  return m[1]
}

async function metric (url: string, name: string): Promise<number> {
  const text = await (await fetch(url)).text()
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  return m === null ? NaN : Number(m[1])
}

async function until (what: string, f: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await f())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

t.test('--help lists every option with its environment variable', async t => {
  const p = agentProc(['--help'])
  t.equal(await p.exited, 0)
  const out = p.stdout()
  t.match(out, /usage: picket agent --collector HOST:PORT/)
  for (const flag of ['--collector', '--host-id', '--data', '--metrics', '--spool-max', '--window', '--linger', '--source']) t.match(out, flag)
  t.match(out, /env PICKET_SPOOL_MAX/)
})

t.test('capture --class: every class has probes on this build; --help lists them', async t => {
  const h = spawnPicket(['capture', '--help'], { env: ENV })
  t.equal(await h.exited, 0)
  t.match(h.stdout(), /--class/)
  t.match(h.stdout(), /network, process, file, dns or all/)
  t.notMatch(h.stdout(), /no probes on this build/, 'no class is said to lack probes')
})

t.test('bad values are refused at start-up, each named, from flags, environment and config file', async t => {
  const dir = t.testdir()
  const p = agentProc(['--collector', 'nohost', '--slabs', '1', '--data', dir])
  t.equal(await p.exited, 2, 'exit 2: configuration error')
  t.match(p.stderr(), /--collector: 'nohost' is not HOST:PORT/)
  t.match(p.stderr(), /--slabs: 1 is below the minimum 2/)
  t.match(p.stderr(), /PICKET_ERR_CONFIG/)
  const e = agentProc(['--collector', '127.0.0.1:1', '--data', dir], { PICKET_SPOOL_MAX: 'lots' })
  t.equal(await e.exited, 2)
  t.match(e.stderr(), /PICKET_SPOOL_MAX \(environment\): 'lots' is not a size/)
  const cfg = join(dir, 'agent.yml')
  writeFileSync(cfg, 'collector: 127.0.0.1:1\nwindw: 3\n')
  const f = agentProc(['--config', cfg, '--data', dir])
  t.equal(await f.exited, 2)
  t.match(f.stderr(), /unknown option 'windw'/)
})

t.test('SIGTERM: capture stops, batches in flight are flushed to the collector, the process exits 0', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const data = t.testdir()
  const p = agentProc(['--collector', c.address, '--data', data, '--host-id', 'cli-term', '--source', 'synth', '--synth-rate', '20000', '--metrics', '0', '--slab-bytes', '32KiB'])
  t.teardown(() => p.stop('SIGKILL'))
  await metricsUrl(p)
  await c.waitFor(() => c.accepted.length >= 5, 60_000, 'the first batches')
  t.equal(await p.stop('SIGTERM'), 0, 'clean exit')
  t.match(p.stderr(), /"msg":"stopping: flushing batches in flight"/)
  t.match(p.stderr(), /agent stopped; every batch was acked/)
  const summary = /captured (\d+) records, spooled (\d+) batches, acked (\d+); (\d+) batches left in the spool/.exec(p.stderr())
  t.ok(summary !== null, 'a summary line')
  const [, captured, spooled, acked, left] = summary!.map(Number)
  t.equal(left, 0)
  t.equal(acked, spooled)
  t.equal(c.acceptedRecords, captured, 'every record captured before the signal was delivered')
  t.equal(firstDifference(receivedIds(c), range(0, captured)), 'none', 'in order, no gaps')
  t.same(c.accepted.map(b => b.seq), range(1, c.accepted.length))
  const s = Spool.open({ dir: join(data, 'spool', 'cli-term'), maxBytes: 1 << 30, segmentBytes: 1 << 20, log: pino({ level: 'silent' }) })
  t.equal(s.stats().pendingBatches, 0, 'the spool on disk agrees: nothing unacked')
  t.equal(s.nextSeq, c.accepted.length + 1)
  s.close()
})

t.test('SIGTERM with the collector down: exits promptly, the spool keeps everything, the next start delivers it', async t => {
  const c = await TestCollector.start()
  t.teardown(() => c.close())
  const address = c.address
  await c.kill()
  const data = t.testdir()
  const args = ['--collector', address, '--data', data, '--host-id', 'cli-down', '--source', 'synth', '--synth-rate', '0', '--synth-total', '12000', '--metrics', '0', '--slab-bytes', '32KiB', '--backoff-max', '500ms']
  const p = agentProc(args)
  t.teardown(() => p.stop('SIGKILL'))
  const url = await metricsUrl(p)
  await until('12,000 records spooled', async () => await metric(url, 'picket_agent_records_spooled_total') >= 12_000)
  const t0 = Date.now()
  t.equal(await p.stop('SIGTERM'), 0)
  t.ok(Date.now() - t0 < 4000, `did not wait out the shutdown timeout for a collector that is down (${Date.now() - t0} ms)`)
  t.match(p.stderr(), /unacked batches stay in the spool/)
  await c.listen()
  const q = agentProc([...args.filter((a, i) => args[i - 1] !== '--synth-total' && a !== '--synth-total'), '--synth-total', '0'])
  t.teardown(() => q.stop('SIGKILL'))
  await c.waitFor(() => c.acceptedRecords >= 12_000, 60_000, 'the replay')
  t.equal(await q.stop('SIGTERM'), 0)
  t.equal(firstDifference(receivedIds(c), range(0, 12_000)), 'none', 'every record, in order')
  t.same(c.accepted.map(b => b.seq), range(1, c.accepted.length), 'seq from 1, contiguous')
})

t.test('SIGKILL with batches in the spool: the restarted agent replays them, nothing lost, nothing twice', async t => {
  const c = await TestCollector.start({ mode: 'stall' })
  t.teardown(() => c.close())
  const data = t.testdir()
  const args = ['--collector', c.address, '--data', data, '--host-id', 'cli-kill', '--source', 'synth', '--metrics', '0', '--slab-bytes', '32KiB', '--backoff-max', '500ms', '--window', '8']
  const p = agentProc([...args, '--synth-rate', '0', '--synth-total', '20000'])
  const url = await metricsUrl(p)
  await until('20,000 records spooled', async () => await metric(url, 'picket_agent_records_spooled_total') >= 20_000)
  t.equal(await p.stop('SIGKILL'), 'SIGKILL')
  t.ok(c.arrivals.length <= 8, `the stalled collector saw at most one window of batches (${c.arrivals.length}) and acked none`)
  await c.close()
  const fresh = await TestCollector.start({ port: c.port })
  t.teardown(() => fresh.close())
  const q = agentProc([...args, '--synth-total', '0'])
  t.teardown(() => q.stop('SIGKILL'))
  await fresh.waitFor(() => fresh.acceptedRecords >= 20_000, 60_000, 'the replay')
  t.match(q.stderr(), /spool holds unacked batches; they will be sent first/)
  t.equal(await q.stop('SIGTERM'), 0)
  t.equal(firstDifference(receivedIds(fresh), range(0, 20_000)), 'none', 'every record exactly once, in order')
  t.same(fresh.accepted.map(b => b.seq), range(1, fresh.accepted.length), 'seq from 1, contiguous, as first assigned')
  t.equal(fresh.duplicates, 0)
})
