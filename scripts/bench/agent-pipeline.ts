import { mkdtempSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { BenchContext, BenchResult } from './cli.js'
import { startDecodeThread } from './lib/decode-thread-client.js'
import { metric, scrape } from './lib/metrics.js'
import { peakRssBytes, sleep, threadCpu, threadNames, totalCpu, waitExit } from './lib/proc.js'
import { fmt, median, table } from './lib/report.js'
import { startSink, type Sink } from './lib/sink.js'
import { pick, TINY } from './lib/size.js'
import { freePort, spawnPicket, tailStderr } from './lib/spawn.js'

// agent-pipeline: the whole agent at full rate, without a kernel. `picket
// agent --source synth --synth-rate 0` runs as its own process: its consumer
// thread fills SharedArrayBuffer slabs with raw NET_EVENTS records as fast as
// slabs come free, the piscina decoders turn each slab into one msgpack
// batch, the spool writes it, and the shipper sends it over gRPC to a
// loopback sink in this process that acks every batch at once. The clock
// and the agent's CPU (all its threads, from /proc) run from the first batch
// the sink gets to the last, so start-up is not counted.
//
// The peer, measured in this process between agent runs (the agent is
// stopped then, so it has the machine to itself as the agent had): msgpackr
// packing the same OCSF records, already built, on one thread. That is the
// least any agent must do per record, before it captures, decodes, spools or
// ships anything.

interface PipelineRun {
  decoders: number
  records: number
  seconds: number
  rate: number
  /** agent process CPU (all threads) per record, µs */
  cpuUs: number
  mainUs: number
  otherUs: number
  /** of otherUs: the consumer thread, which here runs the synthetic source that makes the records */
  sourceUs: number
  /** this process (the sink) per record, µs */
  sinkUs: number
  lost: number
  bytesPerRecord: number
  /** longest time the sink waited for the next batch, ms */
  maxGapMs: number
  /** agent peak resident set size, bytes */
  peakRss: number
  peerPack: number
  peerDecode: number
}

export interface PipelineData {
  records: number
  configs: Array<{ decoders: number, rate: number, cpuUs: number, mainUs: number, otherUs: number, sourceUs: number, pipelineUs: number, sinkUs: number, lost: number, ratio: number, maxGapMs: number, peakRss: number }>
  peerPack: number
  peerDecode: number
  runs: PipelineRun[]
}

async function waitUntil (what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number, every = 5): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(every)
  }
}

/** the consumer threads' name (agent/consumer/host.ts: picket-consumer-<ring>, cut to 15 bytes by the kernel) */
const CONSUMER_THREAD = 'picket-consumer'

async function runAgent (sink: Sink, n: number, decoders: number, tag: string): Promise<Omit<PipelineRun, 'peerPack' | 'peerDecode'>> {
  const data = mkdtempSync(join(tmpdir(), 'picket-bench-pipeline-'))
  const port = await freePort()
  const p = spawnPicket(['agent', '--collector', sink.address, '--source', 'synth', '--synth-rate', '0', '--synth-total', String(n),
    '--data', data, '--host-id', `bench-pipeline-${tag}`, '--metrics', String(port), '--log-level', 'warn', '--decoders', String(decoders)])
  const stderr = tailStderr(p)
  const pid = p.pid as number
  const r0 = sink.records
  const b0 = sink.bytes
  let last = 0
  let maxGapMs = 0
  sink.onBatch = () => {
    const now = performance.now()
    if (last > 0) maxGapMs = Math.max(maxGapMs, now - last)
    last = now
  }
  try {
    const alive = (): void => { if (p.exitCode !== null) throw new Error(`the agent exited (${p.exitCode}) early`) }
    await waitUntil('the first batch at the sink', () => { alive(); return sink.records > r0 }, 30_000, 2)
    const t0 = performance.now()
    const cpu0 = totalCpu(pid)
    const th0 = threadCpu(pid)
    const s0 = process.cpuUsage()
    const got0 = sink.records - r0
    // done when every record arrived, or arrived or was counted as dropped
    let lost = 0
    let lastScrape = 0
    await waitUntil('the agent to ship every record', async () => {
      alive()
      const got = sink.records - r0
      if (got >= n) return true
      if (performance.now() - lastScrape > 500) {
        lastScrape = performance.now()
        try { lost = metric(await scrape(`http://127.0.0.1:${port}/metrics`), 'picket_agent_drops_total') } catch {}
        return got + lost >= n
      }
      return false
    }, 300_000, 2)
    const seconds = (performance.now() - t0) / 1000
    const cpu = totalCpu(pid) - cpu0
    const th1 = threadCpu(pid)
    const s1 = process.cpuUsage(s0)
    const peakRss = peakRssBytes(pid)
    const got = sink.records - r0 - got0
    const main = (th1.get(pid) ?? 0) - (th0.get(pid) ?? 0)
    let source = 0
    for (const [tid, name] of threadNames(pid)) if (name.startsWith(CONSUMER_THREAD)) source += (th1.get(tid) ?? 0) - (th0.get(tid) ?? 0)
    return {
      decoders,
      records: got,
      seconds,
      rate: got / seconds,
      cpuUs: cpu * 1e6 / got,
      mainUs: main * 1e6 / got,
      otherUs: (cpu - main) * 1e6 / got,
      sourceUs: source * 1e6 / got,
      sinkUs: (s1.user + s1.system) / got,
      lost,
      bytesPerRecord: (sink.bytes - b0) / (sink.records - r0),
      maxGapMs,
      peakRss,
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}; agent stderr:\n${stderr()}`)
  } finally {
    sink.onBatch = undefined
    p.kill('SIGINT')
    await waitExit(p)
    rmSync(data, { recursive: true, force: true })
  }
}

/** The peer and the single-thread decoder path, records/s, in a thread with the decoder's heap setting. */
async function peers (records: number): Promise<{ pack: number, decode: number }> {
  const t = await startDecodeThread(records)
  try {
    await t.run('msgpackr')
    await t.run('picket') // warm
    return { pack: records / await t.run('msgpackr'), decode: records / await t.run('picket') }
  } finally {
    await t.close()
  }
}

export async function bench (ctx: BenchContext): Promise<BenchResult> {
  const n = pick(ctx, { full: 1_000_000, quick: 500_000, tiny: 60_000 })
  const peerRecords = pick(ctx, { full: 250_000, quick: 100_000, tiny: 20_000 })
  const defaultDecoders = Math.min(4, Math.max(1, availableParallelism() - 1))
  const configs = TINY ? [defaultDecoders] : [...new Set([defaultDecoders, 2])]
  const sink = await startSink()
  const runs: PipelineRun[] = []
  ctx.progress.start('agent-pipeline', ctx.runs * configs.length)
  try {
    for (let r = 0; r < ctx.runs; r++) {
      for (const d of r % 2 === 0 ? configs : [...configs].reverse()) {
        const run = await runAgent(sink, n, d, `${r}-${d}`)
        const peer = await peers(peerRecords)
        runs.push({ ...run, peerPack: peer.pack, peerDecode: peer.decode })
        ctx.progress.tick(1, `${d} decoder${d === 1 ? '' : 's'}: ${fmt(run.rate)} records/s`)
      }
    }
  } finally {
    ctx.progress.stop()
    await sink.close()
  }

  const peerPack = median(runs.map(r => r.peerPack))
  const peerDecode = median(runs.map(r => r.peerDecode))
  const summary = configs.map(d => {
    const rs = runs.filter(r => r.decoders === d)
    return {
      decoders: d,
      rate: median(rs.map(r => r.rate)),
      cpuUs: median(rs.map(r => r.cpuUs)),
      mainUs: median(rs.map(r => r.mainUs)),
      otherUs: median(rs.map(r => r.otherUs)),
      sourceUs: median(rs.map(r => r.sourceUs)),
      pipelineUs: median(rs.map(r => r.cpuUs - r.sourceUs)),
      sinkUs: median(rs.map(r => r.sinkUs)),
      lost: rs.reduce((s, r) => s + r.lost, 0),
      ratio: median(rs.map(r => r.rate / r.peerPack)),
      maxGapMs: Math.max(...rs.map(r => r.maxGapMs)),
      peakRss: median(rs.map(r => r.peakRss)),
    }
  })
  const head = summary.find(s => s.decoders === defaultDecoders) ?? summary[0]
  const best = summary.reduce((a, b) => b.rate > a.rate ? b : a)
  const bytes = median(runs.map(r => r.bytesPerRecord))
  const label = (d: number): string => `${d} decoder${d === 1 ? '' : 's'}${d === defaultDecoders ? ' (default here)' : ''}`
  const body = [
    `\`picket agent --source synth --synth-rate 0 --synth-total ${fmt(n)}\` per run, as its own process: consumer thread → 256 KiB slabs →`,
    'piscina decoders → one msgpack batch per slab → disk spool → gRPC Ship stream → a loopback sink in the benchmark process that',
    `acks every batch. Timed from the first batch at the sink to the last; ${fmt(bytes)} msgpack bytes per record on the wire.`,
    'Agent CPU is user + system of every agent thread, from /proc, over the same interval, divided by the records the sink got',
    '("other threads" are the consumer, the decoders, V8\'s garbage-collector helpers and libuv).',
    `Peer, measured in this process between agent runs: msgpackr packing the same OCSF records, already built, on one thread,`,
    `${fmt(peerPack)} records/s. The ratio below is the whole agent (all threads) against that one-thread bare pack.`,
    `For scale, the decoder path alone on one thread (as in the decode section) ran at ${fmt(peerDecode)} records/s.`,
    '',
    table(['agent', 'records/s', 'vs bare msgpackr pack', 'agent CPU µs/record', 'main thread', 'other threads', 'of which the synthetic source', 'agent without the source', 'sink µs/record', 'longest pause at the sink', 'agent peak RSS', 'records lost'],
      summary.map(s => [label(s.decoders), fmt(s.rate), `${(s.ratio * 100).toFixed(0)}%`, s.cpuUs.toFixed(2), s.mainUs.toFixed(2), s.otherUs.toFixed(2), s.sourceUs.toFixed(2), s.pipelineUs.toFixed(2), s.sinkUs.toFixed(2),
        `${fmt(s.maxGapMs)} ms`, `${fmt(s.peakRss / 2 ** 20)} MiB`, fmt(s.lost)])),
    '',
    table(['target', 'measured', 'met'], [
      ['≥ 1,000,000 records/s', `${fmt(head.rate)} (${label(head.decoders)}); best ${fmt(best.rate)}`, best.rate >= 1e6 ? 'yes' : '**no**'],
      ['≤ 1 µs agent CPU per record', `${head.cpuUs.toFixed(2)} µs with the synthetic source, ${head.pipelineUs.toFixed(2)} µs without it`, head.cpuUs <= 1 ? 'yes' : head.pipelineUs <= 1 ? 'without the source only' : '**no**'],
      ['≥ 50% of a bare msgpackr pack of the same records', `${(head.ratio * 100).toFixed(0)}%`, head.ratio >= 0.5 ? 'yes' : '**no**'],
      ['no record lost', `${fmt(summary.reduce((s, x) => s + x.lost, 0))} lost`, summary.every(s => s.lost === 0) ? 'yes' : '**no**'],
    ]),
    '',
    ...shortfall(head, peerDecode, bytes),
    '',
    ...pauses(summary, defaultDecoders),
  ].join('\n')
  return {
    title: 'agent-pipeline: synthetic records → slabs → decoders → gRPC, through the real agent',
    body,
    data: { records: n, configs: summary, peerPack, peerDecode, runs } satisfies PipelineData,
  }
}

/**
 * Where the agent's CPU goes, from this run's numbers and from CPU profiles
 * (node --cpu-prof on `picket agent --source synth --synth-rate 0`, dist
 * build, 1,000,000 records to a loopback sink, the steady state after
 * start-up) taken while writing this benchmark; see BENCHMARKS.md.
 */
function shortfall (head: { mainUs: number, otherUs: number, cpuUs: number, rate: number }, peerDecode: number, bytes: number): string[] {
  const met = head.cpuUs <= 1
  return [
    `**Where the CPU goes${met ? '' : ', and why it falls short'}.** The decoder path costs ~${(1e6 / peerDecode).toFixed(2)} µs per record on one thread`,
    `(see the decode section: lean records of ~${fmt(bytes)} bytes, written straight from the raw structs). The other threads together cost`,
    `${head.otherUs.toFixed(2)} µs per record: the decoder, and the consumer thread, which here also runs the synthetic source that makes the records.`,
    `The main thread costs ${head.mainUs.toFixed(2)} µs per record. ${MAIN_PROFILE}`,
  ]
}

const MAIN_PROFILE = [
  'In its CPU profile (steady state), about 30% of its busy time is sending over gRPC (grpc-js copying each Batch into a frame 9%,',
  'encoding the Batch 6%, HTTP/2 socket writes 5%, the stream machinery the rest), 29% garbage collection, 10% handing slabs to piscina,',
  '7% the in-order commit, 5% the spool\'s writev, 2% freeing slabs to the consumer. Before the output arena (agent/arena.ts) and the',
  'lent encode memory, garbage collection was 45% of a busier thread: every batch brought ~280 KB of fresh external memory three times',
  '(the decoder\'s output arriving by transfer, the Batch encoding, grpc-js\'s frame), and V8 ran a full mark-compact every ~120 ms',
  'on a ~13 MB heap. Now only grpc-js\'s frame is allocated per batch; the records are written to the spool from the arena and',
  'copied once, into the lent encode memory, before grpc-js\'s own copy.',
].join(' ')

/** The paragraph on the longest pauses at the sink, from what this run saw. */
function pauses (summary: Array<{ decoders: number, maxGapMs: number, mainUs: number }>, defaultDecoders: number): string[] {
  const head = summary.find(s => s.decoders === defaultDecoders) ?? summary[0]
  const worst = summary.reduce((a, b) => b.maxGapMs > a.maxGapMs ? b : a)
  const out = [
    `**Pauses at the sink.** Slabs reach the decoders in order (piscina \`stricterFIFO: true\` in agent/decode-pool/pool.ts). Without it,`,
    'piscina puts a task it could not hand to a busy worker back at the *tail* of its queue; a slab overtaken again and again held up',
    'the agent\'s in-order commit, everything decoded after it waited in memory, and an earlier run of this benchmark saw 1.3 s pauses',
    `and 885 MiB peak RSS. With ${defaultDecoders} decoder${defaultDecoders === 1 ? '' : 's'} the longest pause is now ${fmt(head.maxGapMs)} ms.`,
  ]
  if (worst !== head && worst.maxGapMs > 2 * head.maxGapMs) {
    out.push(`With ${worst.decoders} decoders it is ${fmt(worst.maxGapMs)} ms: more busy threads than this machine has cores (main, consumer, ${worst.decoders} decoders),`,
      `and the main thread, which commits, spools and ships, costs ${worst.mainUs.toFixed(1)} µs per record instead of ${head.mainUs.toFixed(1)}; that is why`,
      'the agent defaults to one decoder per core beyond the first.')
  }
  return out
}
