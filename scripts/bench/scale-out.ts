import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { partitionConsumer } from '../../backend/cluster/nats.js'
import { BATCH_STREAM } from '../../backend/cluster/wire.js'
import { AgentStream } from '../injector/index.js'
import type { BenchContext, BenchResult } from './cli.js'
import { startBackendProc, type BackendProc } from './lib/backend.js'
import { benignBatch, connectClients, hostId, PORT_SCAN_RULE, scanBatch, scanSource, type Packed, type Scan } from './lib/fleet.js'
import { sleep, totalCpu, waitExit } from './lib/proc.js'
import { fmt, median, quantile, table } from './lib/report.js'
import { pick, TINY } from './lib/size.js'
import { freePort, spawnPicket } from './lib/spawn.js'

// scale-out: the same fleet load (closed loop of pre-packed batches, as in
// ingest.ts) against the in-process backend, then against
// `picket backend --bridge` on one local nats-server (R1: a 3-server R3
// cluster on 2 cores would measure the cores' contention, not Picket) with
// one and then two `picket detect` nodes. The detection workers are 2 in
// every configuration (in process; one node of 2; two nodes of 1).
//
// Throughput is end to end: records acked in the measured window, divided by
// the window plus the time the detection nodes then took to drain what the
// stream held (0 in process, where the ack waits for detection). CPU per
// record is each process's /proc time over that span. Latency: the
// collector's receive time of the batch crossing the port-scan threshold to
// the store's commit of its finding (crossRecvAt travels with the batch).
// Takeover: after the two-node run, one node is SIGKILLed; the survivor takes
// its partitions after the lease TTL, replays each from now minus the
// longest window (5 minutes: the whole run), then goes live.

const PARTITIONS = 16
const LANES = 64
const PORTS_PER_SCAN = 20
const WINDOW_S = 300

interface Config { name: string, nodes: number, workers: number }
const CONFIGS: Config[] = [
  { name: 'in-process', nodes: 0, workers: 2 },
  { name: 'JetStream, 1 detection node', nodes: 1, workers: 2 },
  { name: 'JetStream, 2 detection nodes', nodes: 2, workers: 1 },
]

interface Run {
  config: string
  rate: number
  ackRate: number
  drainS: number
  backendUs: number
  detectUs: number
  natsUs: number
  lat: number[]
  scans: number
  missing: number
  extra: number
  /** stored bytes of the batch stream per record it holds (messages × batch records) */
  streamBytes: number
  takeover?: Takeover
}

interface Takeover { partitions: number, batches: number, records: number, ttlS: number, totalS: number, replayS: number }

interface Workload { hosts: string[], bg: Packed[], scans: Scan[], batchRecords: number }

function workload (hosts: number, batchRecords: number, scans: number): Workload {
  const ids = Array.from({ length: hosts }, (_, i) => hostId('scaleout', i, String(hosts).length))
  const t0 = Date.now()
  return {
    hosts: ids,
    bg: ids.map((id, i) => benignBatch(id, batchRecords, i + 1, t0)),
    scans: Array.from({ length: scans }, (_, j) => scanBatch(ids[j % hosts], j % hosts, scanSource(j), PORTS_PER_SCAN, batchRecords, 1000 + j, t0)),
    batchRecords,
  }
}

interface Proc { p: ChildProcess, log: () => string, stop: () => Promise<void> }

function logOf (p: ChildProcess): () => string {
  let buf = ''
  p.stderr?.setEncoding('utf8').on('data', (d: string) => { buf += d })
  return () => buf
}

async function startNats (): Promise<Proc & { url: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'picket-bench-nats-'))
  const port = await freePort()
  const p = spawn('nats-server', ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], { stdio: ['ignore', 'ignore', 'pipe'] })
  const log = logOf(p)
  const url = `nats://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    try { await (await connect({ servers: url, timeout: 500 })).close(); break } catch (err) {
      if (i > 50) { p.kill('SIGKILL'); throw new Error(`nats-server did not start: ${(err as Error).message}\n${log()}`) }
      await sleep(100)
    }
  }
  return { p, log, url, stop: async () => { p.kill('SIGTERM'); await waitExit(p, 10_000); rmSync(dir, { recursive: true, force: true }) } }
}

async function startDetect (url: string, id: string, workers: number): Promise<Proc & { metrics: string }> {
  const p = spawnPicket(['detect', '--nats', url, '--node-id', id, '--workers', String(workers), '--http', '127.0.0.1:0', '--log-level', 'info'])
  const log = logOf(p)
  const end = Date.now() + 60_000
  let m: RegExpMatchArray | null = null
  while ((m = /\/metrics on (\S+)/.exec(log())) === null) {
    if (Date.now() > end || p.exitCode !== null) throw new Error(`picket detect ${id} did not start:\n${log().slice(-3000)}`)
    await sleep(50)
  }
  return { p, log, metrics: m[1], stop: async () => { p.kill('SIGTERM'); await waitExit(p, 15_000) } }
}

async function owned (metricsUrl: string): Promise<number> {
  try { return ((await (await fetch(`${metricsUrl}/healthz`)).json()) as { owned: number[] }).owned.length } catch { return 0 }
}

/** The survivor's log lines (pino JSON) whose msg starts with `msg`. */
function lines (log: string, msg: string): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const l of log.split('\n')) {
    if (!l.includes(msg)) continue
    try { out.push(JSON.parse(l) as Record<string, unknown>) } catch {}
  }
  return out
}

async function runOnce (c: Config, w: Workload, warmupMs: number, measureMs: number, takeover: boolean): Promise<Run> {
  const nats = c.nodes > 0 ? await startNats() : undefined
  const nodes: Array<Proc & { metrics: string }> = []
  let be: BackendProc | undefined
  const clients: ReturnType<typeof connectClients> = []
  let stop = false
  const lanes: Array<Promise<void>> = []
  try {
    be = await startBackendProc(nats !== undefined ? { backend: { bridge: [nats.url], partitions: PARTITIONS } } : { workers: c.workers })
    for (let i = 0; i < c.nodes; i++) nodes.push(await startDetect((nats as { url: string }).url, `bench-d${i + 1}`, c.workers))
    const deadline = Date.now() + 60_000
    // balanced before the load: every node holding its share, every partition held once
    const balanced = async (): Promise<boolean> => {
      const o = await Promise.all(nodes.map(async n => await owned(n.metrics)))
      return o.every(x => x >= Math.floor(PARTITIONS / nodes.length)) && o.reduce((x, y) => x + y, 0) === PARTITIONS
    }
    while (nodes.length > 0 && !(await balanced())) {
      if (Date.now() > deadline) throw new Error('the detection nodes did not share the partitions within 60 s')
      await sleep(200)
    }
    const backend = be
    clients.push(...connectClients(backend.address, 8))
    const streams = w.hosts.map((id, i) => new AgentStream(clients[i % clients.length], id, { window: 64, agentVersion: 'bench-scale-out' }))
    const scansDue = w.scans.map((scan, j) => ({ scan, due: warmupMs + measureMs * 0.8 * (j + 0.5) / w.scans.length }))
    const sent: Array<{ scan: Scan }> = []
    let measuring = false
    let windowRecords = 0
    const t0 = performance.now()
    for (let i = 0; i < LANES; i++) {
      lanes.push((async () => {
        for (let k = i; !stop; k += LANES) {
          let h = k % w.hosts.length
          let b: Packed = w.bg[h]
          if (scansDue.length > 0 && scansDue[0].due <= performance.now() - t0) {
            const s = (scansDue.shift() as { scan: Scan }).scan
            sent.push({ scan: s })
            h = s.host
            b = s
          }
          const ack = await streams[h].send(b.bytes, b.count, b.count, b.context)
          if (ack.status === 'OK' && measuring) windowRecords += b.count
        }
      })())
    }
    const pids = (): { be: number, det: number[], nats: number | undefined } => ({ be: backend.pid, det: nodes.map(n => n.p.pid as number), nats: nats?.p.pid })
    const cpu = (): { be: number, det: number, nats: number } => {
      const p = pids()
      return { be: totalCpu(p.be), det: p.det.reduce((a, pid) => a + totalCpu(pid), 0), nats: p.nats !== undefined ? totalCpu(p.nats) : 0 }
    }
    await sleep(warmupMs)
    const c0 = cpu()
    measuring = true
    const tA = performance.now()
    await sleep(measureMs)
    measuring = false
    const windowS = (performance.now() - tA) / 1000
    const records = windowRecords
    stop = true
    await Promise.all(lanes)
    // what the stream still holds for detection, drained
    const tD = performance.now()
    let streamBytes = NaN
    if (nats !== undefined) {
      const nc = await connect({ servers: nats.url })
      const jsm = await jetstreamManager(nc)
      for (;;) {
        let left = 0
        for (let p = 0; p < PARTITIONS; p++) { const ci = await jsm.consumers.info(BATCH_STREAM, partitionConsumer(p)); left += ci.num_pending + ci.num_ack_pending }
        if (left === 0 || performance.now() - tD > 120_000) break
        await sleep(100)
      }
      const si = await jsm.streams.info(BATCH_STREAM)
      streamBytes = si.state.bytes / (si.state.messages * w.batchRecords)
      await nc.close()
    }
    const drainS = (performance.now() - tD) / 1000
    const c1 = cpu()
    const end = Date.now() + 15_000
    while (Date.now() < end && backend.created.filter(f => f.rule === PORT_SCAN_RULE).length < sent.length) await sleep(50)
    await sleep(500)
    const key = (host: string | null, src: string | undefined): string => `${host ?? ''}|${src ?? ''}`
    const expected = new Set(sent.map(s => key(w.hosts[s.scan.host], s.scan.source)))
    const made = backend.created.filter(f => f.rule === PORT_SCAN_RULE)
    const seen = new Map<string, number>()
    for (const f of made) seen.set(key(f.host, f.sources[0]), (seen.get(key(f.host, f.sources[0])) ?? 0) + 1)
    let missing = 0
    let extra = 0
    for (const k of expected) { const n = seen.get(k) ?? 0; if (n === 0) missing++; else extra += n - 1 }
    for (const k of seen.keys()) if (!expected.has(k)) extra += seen.get(k) ?? 0
    const run: Run = {
      config: c.name,
      rate: records / (windowS + drainS),
      ackRate: records / windowS,
      drainS,
      backendUs: (c1.be - c0.be) * 1e6 / records,
      detectUs: (c1.det - c0.det) * 1e6 / records,
      natsUs: (c1.nats - c0.nats) * 1e6 / records,
      lat: made.filter(f => f.crossRecvAt !== null).map(f => f.storedAt - (f.crossRecvAt as number)),
      scans: sent.length,
      missing,
      extra,
      streamBytes,
    }
    if (takeover && nodes.length === 2) run.takeover = await killOne(nodes, w.batchRecords)
    return run
  } finally {
    stop = true
    await Promise.allSettled(lanes)
    for (const cl of clients) cl.close()
    for (const n of nodes) await n.stop()
    await be?.stop()
    await nats?.stop()
  }
}

/** SIGKILL the second node; the survivor takes its partitions once their leases lapse, replays each, goes live. */
async function killOne (nodes: Array<Proc & { metrics: string }>, batchRecords: number): Promise<Takeover> {
  const [survivor, victim] = nodes
  const before = lines(survivor.log(), 'partition replayed; live').length
  const theirs = await owned(victim.metrics)
  victim.p.kill('SIGKILL')
  await waitExit(victim.p)
  nodes.pop()
  const killedAt = Date.now()
  const end = killedAt + 90_000
  while (lines(survivor.log(), 'partition replayed; live').length - before < theirs && Date.now() < end) await sleep(50)
  const live = lines(survivor.log(), 'partition replayed; live').slice(before)
  const taken = lines(survivor.log(), 'lease taken').filter(l => Number(l.time) >= killedAt)
  const firstTaken = Math.min(...taken.map(l => Number(l.time)))
  const lastLive = Math.max(...live.map(l => Number(l.time)))
  const batches = live.reduce((a, l) => a + Number(l.batches), 0)
  return { partitions: live.length, batches, records: batches * batchRecords, ttlS: (firstTaken - killedAt) / 1000, totalS: (lastLive - killedAt) / 1000, replayS: (lastLive - firstTaken) / 1000 }
}

export async function bench (ctx: BenchContext): Promise<BenchResult> {
  const hosts = pick(ctx, { full: 1000, quick: 256, tiny: 16 })
  const batchRecords = 200
  const warmupMs = pick(ctx, { full: 3000, quick: 2000, tiny: 500 })
  const measureMs = pick(ctx, { full: 15_000, quick: 6000, tiny: 1500 })
  const runs = ctx.quick || TINY ? 1 : ctx.runs
  const w = workload(hosts, batchRecords, pick(ctx, { full: 200, quick: 64, tiny: 8 }))
  const all: Run[] = []
  ctx.progress.start('scale-out', runs * CONFIGS.length)
  try {
    for (let r = 0; r < runs; r++) {
      for (const c of CONFIGS) {
        const run = await runOnce(c, w, warmupMs, measureMs, r === runs - 1 && c.nodes === 2)
        all.push(run)
        ctx.progress.tick(1, `${c.name}: ${fmt(run.rate)} records/s, p99 ${fmt(quantile(run.lat, 0.99))} ms`)
      }
    }
  } finally {
    ctx.progress.stop()
  }
  const series = CONFIGS.map(c => {
    const rs = all.filter(r => r.config === c.name)
    const lat = rs.flatMap(r => r.lat)
    return { c, rate: median(rs.map(r => r.rate)), ackRate: median(rs.map(r => r.ackRate)), drainS: median(rs.map(r => r.drainS)), backendUs: median(rs.map(r => r.backendUs)), detectUs: median(rs.map(r => r.detectUs)), natsUs: median(rs.map(r => r.natsUs)), p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), streamBytes: median(rs.map(r => r.streamBytes)), scans: rs.reduce((a, r) => a + r.scans, 0), missing: rs.reduce((a, r) => a + r.missing, 0), extra: rs.reduce((a, r) => a + r.extra, 0) }
  })
  const base = series[0].rate
  const rows = series.map(s => [s.c.name, fmt(s.rate), s.c.nodes === 0 ? '—' : `${fmt(s.ackRate)} (drain ${s.drainS.toFixed(1)} s)`, s.c.nodes === 0 ? '100%' : `${(s.rate / base * 100).toFixed(0)}%`, fmt(s.backendUs, 1), s.c.nodes === 0 ? '(in the backend)' : fmt(s.detectUs, 1), s.c.nodes === 0 ? '—' : fmt(s.natsUs, 1), `${fmt(s.p50)} / ${fmt(s.p99)}`, `${s.scans} / ${s.missing} / ${s.extra}`])
  const js = series.slice(1)
  const worst = js.reduce((a, s) => s.rate / base < a.rate / base ? s : a, js[0])
  const worstP99 = Math.max(...js.map(s => s.p99))
  const tk = all.find(r => r.takeover !== undefined)?.takeover
  const fullWindowRecords = series[2].rate * WINDOW_S / PARTITIONS
  const replayRate = tk !== undefined && tk.replayS > 0 ? tk.records / tk.replayS : NaN
  const out = [
    `${hosts} hosts send ${batchRecords}-record batches (lean form, pre-packed) from ${LANES} closed-loop lanes over 8 gRPC connections; ${w.scans.length} port scans (${PORTS_PER_SCAN} ports, one batch each) are spread over the window. JetStream runs are \`picket backend --bridge\` on one local \`nats-server\` (2.9.10, R1, file storage) with ${PARTITIONS} partitions; detection workers are 2 in every row. Throughput is records acked in the window over the window plus the time the detection nodes then needed to drain the stream ("acked" is the collector's own rate, which the stream buffers).`,
    '',
    table(['configuration', 'records/s end to end', 'records/s acked', 'vs in-process', 'backend CPU µs/record', 'detection CPU µs/record', 'nats-server CPU µs/record', 'crossing → stored finding p50 / p99 ms', 'scans / missing / extra findings'], rows),
    '',
    `Target: JetStream at ≥50% of in-process throughput, p99 ≤250 ms. Measured: the worst JetStream row (${worst.c.name}) at ${(worst.rate / base * 100).toFixed(0)}% — ${worst.rate / base >= 0.5 ? 'met' : '**missed**'}; worst JetStream p99 ${fmt(worstP99)} ms — ${worstP99 <= 250 ? 'met' : '**missed**'}.`,
  ]
  const cost = (x: typeof series[number]): number => x.backendUs + (x.c.nodes > 0 ? x.detectUs + x.natsUs : 0)
  out.push('', `Why: every process here shares one machine's ${cpus().length} cores with the injector (and with whatever else runs: see the load average above). A record costs ${fmt(cost(series[0]), 1)} µs of CPU in process and ${fmt(cost(series[1]), 1)} µs / ${fmt(cost(series[2]), 1)} µs in JetStream mode (backend + detection + nats-server, one and two nodes): ${fmt(cost(series[1]) / cost(series[0]), 1)}× as much. On one machine that CPU is what the throughput is traded for; the hop pays back only with detection nodes on machines of their own, where the backend's share (${fmt(series[2].backendUs, 1)} µs a record) is what is left on the backend. The p99 is the slowest of ${series[2].scans} scans a row: a crossing batch waits behind what its node already pulled (up to 256 batches a partition) and then for the findings' trip back over NATS, on cores every process here competes for.`)
  const wire = w.bg.reduce((n, b) => n + b.bytes.byteLength + b.context.byteLength, 0) / w.bg.reduce((n, b) => n + b.count, 0)
  out.push('', `Bytes: a record is ${fmt(wire, 1)} bytes in its batch on the wire (lean form, ${batchRecords} a batch) and ${fmt(series[1].streamBytes, 1)} bytes in the batch stream's file store (the packed batch plus the message's headers and index, per replica).`)
  if (tk !== undefined) {
    out.push('', `Takeover: one of the two nodes SIGKILLed after its run; the survivor took its ${tk.partitions} partitions ${tk.ttlS.toFixed(1)} s later (the 10 s lease TTL, renewed every 2.5 s), replayed ${fmt(tk.batches)} batches (${fmt(tk.records)} records, the whole run: all of it is inside the 5-minute window) and was live on all of them ${tk.totalS.toFixed(1)} s after the kill: ${tk.replayS.toFixed(1)} s of replay, ${fmt(replayRate)} records/s. A partition whose 5-minute window is full at the two-node rate holds ${fmt(fullWindowRecords)} records (${fmt(series[2].rate)} records/s × ${WINDOW_S} s / ${PARTITIONS}); replaying one at that pace takes about ${fmt(fullWindowRecords / replayRate, 1)} s, on top of the TTL.`)
  }
  return { title: 'Scale-out: in process vs NATS JetStream', body: out.join('\n'), runs, data: { series: series.map(s => ({ ...s, c: s.c.name })), takeover: tk } }
}
