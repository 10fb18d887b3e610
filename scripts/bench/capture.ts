import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { rootPath, siblingModule } from '../../shared/paths.js'
import type { BenchContext, BenchResult } from './cli.js'
import { metric, scrape } from './lib/metrics.js'
import { runJson, sleep, totalCpu, waitExit } from './lib/proc.js'
import { fmt, median, pct, table } from './lib/report.js'
import { startSink, type Sink } from './lib/sink.js'

// capture: the cost to the monitored host. A connection storm on loopback
// (scripts/bench/storm.c: connect() to closed ports, 1 in 50 to an open one)
// runs with nothing attached, with `picket agent` shipping to a local
// collector, and with libbpf-tools `tcpstates` (perf buffer), interleaved run
// by run so the machine's noise hits all three alike.

export const STORM = rootPath('scripts', 'bench', 'build', 'storm')

interface StormResult { connections: number, refused: number, opened: number, failed: number, seconds: number, rate: number }

async function storm (count: number, threads = 1): Promise<StormResult> {
  return await runJson<StormResult>(STORM, ['--count', String(count), '--threads', String(threads), '--open-every', '50'])
}

interface AgentRun { rate: number, cpu: number, captured: number, emitted: number, dropped: number, acked: number, recursion: number }

async function waitFor (what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    try { if (await fn()) return } catch {}
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

async function withAgent (sink: Sink, count: number, metricsPort: number, threads = 1): Promise<AgentRun> {
  const data = mkdtempSync(join(tmpdir(), 'picket-bench-agent-'))
  const p = spawn(process.execPath, [rootPath('bin', 'picket.js'), 'agent', '--collector', sink.address, '--data', data,
    // the connection storm's rows: the network class alone, as before the other classes had rings
    '--metrics', String(metricsPort), '--host-id', 'bench-capture', '--log-level', 'warn', '--class', 'network'], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  p.stderr.on('data', d => { stderr += String(d) })
  const url = `http://127.0.0.1:${metricsPort}/metrics`
  try {
    await waitFor('the agent to connect', async () => metric(await scrape(url), 'picket_agent_connected') === 1, 20_000)
    await sleep(300)
    const m0 = await scrape(url)
    const sink0 = sink.records
    const cpu0 = totalCpu(p.pid!)
    const s = await storm(count, threads)
    // wait until the ring is drained, everything decoded and acked
    let last = -1
    await waitFor('the agent to ship the storm', async () => {
      const m = await scrape(url)
      const cap = metric(m, 'picket_agent_records_captured_total')
      const done = cap === last && metric(m, 'picket_agent_spool_pending_batches') === 0 && metric(m, 'picket_agent_queue_depth', { queue: 'decoder' }) === 0
      last = cap
      return done
    }, 60_000)
    const cpu1 = totalCpu(p.pid!)
    // kernel counters reach the metrics on the agent's 1 s stats tick
    await sleep(1300)
    const m1 = await scrape(url)
    const d = (name: string, labels?: Record<string, string>): number => metric(m1, name, labels) - metric(m0, name, labels)
    return {
      rate: s.rate,
      cpu: cpu1 - cpu0,
      captured: d('picket_agent_records_captured_total'),
      emitted: d('picket_agent_kernel_events_total'),
      dropped: d('picket_agent_drops_total'),
      recursion: d('picket_agent_drops_total', { cause: 'kernel_recursion' }),
      acked: sink.records - sink0,
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}; agent stderr:\n${stderr.slice(-3000)}`)
  } finally {
    p.kill('SIGINT')
    await waitExit(p)
    rmSync(data, { recursive: true, force: true })
  }
}

async function withDrainOnly (count: number): Promise<StormResult> {
  const p = spawn(process.execPath, [...process.execArgv, fileURLToPath(siblingModule(import.meta.url, './lib/drain-only'))], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  p.stdout.on('data', d => { out += String(d) })
  try {
    await waitFor('the drain-only probe to attach', async () => out.includes('ready'), 20_000)
    await sleep(300)
    return await storm(count)
  } finally {
    p.kill('SIGINT')
    await waitExit(p)
  }
}

interface PeerRun { rate: number, cpu: number, events: number }

async function withTcpstates (count: number): Promise<PeerRun> {
  // stdout is counted here (newlines) instead of going to /dev/null, so the
  // events it handled are known; counting costs this process, not tcpstates
  const p = spawn('tcpstates', [], { stdio: ['ignore', 'pipe', 'ignore'] })
  let lines = 0
  p.stdout.on('data', (b: Buffer) => {
    for (let i = 0; i < b.length; i++) if (b[i] === 10) lines++
  })
  const exited = new Promise(resolve => p.once('close', resolve)) // close: stdout fully read
  try {
    // tcpstates' stdout into a pipe is block-buffered, so it may print nothing
    // for a while: it has attached once it holds a BPF link or perf event fd
    await waitFor('tcpstates to attach', async () => attachedFds(p.pid!) > 0, 20_000)
    await sleep(300)
    const cpu0 = totalCpu(p.pid!)
    const s = await storm(count)
    await sleep(500)
    const cpu1 = totalCpu(p.pid!)
    p.kill('SIGINT') // it flushes stdout on exit: every line is counted
    await exited
    // minus the header line; the storm is the only traffic that matters
    return { rate: s.rate, cpu: cpu1 - cpu0, events: Math.max(0, lines - 1) }
  } finally {
    if (p.exitCode === null) p.kill('SIGKILL')
    await waitExit(p)
  }
}

function attachedFds (pid: number): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const target = readlinkSync(`/proc/${pid}/fd/${fd}`)
      if (target.includes('bpf-link') || target.includes('perf_event')) n++
    } catch {}
  }
  return n
}

export async function bench (ctx: BenchContext): Promise<BenchResult> {
  if (process.getuid?.() !== 0) throw new Error('the capture benchmark loads BPF programs: run it as root')
  if (!existsSync(STORM)) throw new Error(`${STORM} is missing: run npm run build`)
  if (spawnSync('sh', ['-c', 'command -v tcpstates']).status !== 0) throw new Error('tcpstates is missing: install libbpf-tools (scripts/setup.sh does)')
  const count = ctx.quick ? 100_000 : 300_000
  const sink = await startSink()
  const base: StormResult[] = []
  const agent: AgentRun[] = []
  const kernelOnly: StormResult[] = []
  const peer: PeerRun[] = []
  ctx.progress.start('capture', ctx.runs * 4 + 2)
  try {
    await storm(20_000) // warm up the loopback path
    for (let r = 0; r < ctx.runs; r++) {
      base.push(await storm(count)); ctx.progress.tick(1, 'baseline')
      agent.push(await withAgent(sink, count, 19464)); ctx.progress.tick(1, 'picket agent')
      peer.push(await withTcpstates(count)); ctx.progress.tick(1, 'tcpstates')
      kernelOnly.push(await withDrainOnly(count)); ctx.progress.tick(1, 'kernel half only')
    }
    // the highest rate this machine can throw at the agent: two storm threads
    const maxRuns = [await withAgent(sink, count, 19465, 2)]
    ctx.progress.tick(1, 'max rate')
    maxRuns.push(await withAgent(sink, count, 19466, 2))
    ctx.progress.tick(1, 'max rate')
    ctx.progress.stop()

    const baseRate = median(base.map(b => b.rate))
    const agentRate = median(agent.map(a => a.rate))
    const peerRate = median(peer.map(p => p.rate))
    const kernelRate = median(kernelOnly.map(k => k.rate))
    const agentCpuPerM = median(agent.map(a => a.cpu / (a.emitted / 1e6)))
    const peerCpuPerM = median(peer.map(p => p.cpu / (p.events / 1e6)))
    const emitted = agent.reduce((s, a) => s + a.emitted, 0)
    const captured = agent.reduce((s, a) => s + a.captured, 0)
    const acked = agent.reduce((s, a) => s + a.acked, 0)
    const dropped = agent.reduce((s, a) => s + a.dropped, 0)
    const maxRate = Math.max(...maxRuns.map(m => m.rate))
    const maxLoss = maxRuns.reduce((s, m) => s + m.dropped, 0)
    const overhead = agentRate / baseRate
    const cpuRatio = agentCpuPerM / peerCpuPerM

    const body = [
      `Storm: ${fmt(count)} connect() calls per run on loopback, 1 in 50 to an open port (\`scripts/bench/storm.c\`).`,
      'Each refused connect fires three tracepoints (SYN_SENT, CLOSE, RST with no socket); Picket turns each into one record,',
      'tcpstates reports the two state changes. The agent ships to a loopback collector that acks every batch. tcpstates\'',
      'output goes to a pipe that only counts newlines (instead of /dev/null), so the events it handled are known.',
      '',
      table(['attached', 'storm rate (conn/s)', 'vs nothing', 'events handled', 'lost', 'CPU s per 1M events'], [
        ['nothing', fmt(baseRate), '—', '—', '—', '—'],
        ['picket agent', fmt(agentRate), pct(agentRate / baseRate), `${fmt(captured)} captured of ${fmt(emitted)} emitted¹; ${fmt(acked)} acked`, fmt(dropped), agentCpuPerM.toFixed(2)],
        ['Picket BPF programs only (drained, discarded)', fmt(kernelRate), pct(kernelRate / baseRate), '—', '—', '—'],
        ['libbpf-tools tcpstates', fmt(peerRate), pct(peerRate / baseRate), `${fmt(peer.reduce((s, p) => s + p.events, 0))} lines`, 'not reported', peerCpuPerM.toFixed(2)],
      ]),
      '',
      table(['target', 'measured', 'met'], [
        ['no loss', `${fmt(dropped)} records dropped of ${fmt(emitted)}`, dropped === 0 ? 'yes' : '**no**'],
        ['agent CPU per event ≤ 1.0× tcpstates', `${cpuRatio.toFixed(2)}×`, cpuRatio <= 1 ? 'yes' : '**no**'],
        ['host overhead ≤ 3%', pct(overhead), overhead >= 0.97 ? 'yes' : '**no**'],
      ]),
      '',
      '¹ "emitted" is the BPF programs\' own count (matched events); "lost" is every drop the agent and the kernel count',
      '(ring reservation failures, recursion misses, slab starvation, spool eviction, decode errors, refusals). The few',
      'emitted events not captured are the benchmark\'s own metric scrapes, which happen after the last drain it reads.',
      '',
      `Highest storm rate thrown at the agent (two storm threads on this ${ctx.quick ? 'quick ' : ''}run): ${fmt(maxRate)} conn/s, ` +
        `${maxLoss === 0 ? 'with nothing lost' : `with ${fmt(maxLoss)} records lost`}.`,
      '',
      `Where the overhead comes from: the kernel half alone (the same programs and ring, drained every 5 ms, records discarded)`,
      `costs the storm ${pct(kernelRate / baseRate)}; enabling the three tracepoints costs something before any program runs (the kernel`,
      'builds each trace record). The rest is the agent\'s decode, spool and ship work, which on this 2-core machine competes',
      'with the storm for the same cores. The BPF side never wakes user space per record (`BPF_RB_NO_WAKEUP`; a wakeup only',
      'past the ring\'s fill mark), which is what keeps it far below tcpstates\' per-event perf-buffer wakeups.',
    ].join('\n')
    return {
      title: 'capture: overhead on the monitored host, against libbpf-tools tcpstates',
      body,
      data: { count, baseRate, agentRate, peerRate, kernelRate, agentCpuPerM, peerCpuPerM, emitted, captured, dropped, maxRate, maxLoss, runs: { base, agent, peer, kernelOnly, maxRuns } },
    }
  } finally {
    ctx.progress.stop()
    await sink.close()
  }
}
