import { OutputArena } from '../../agent/arena.js'
import { DecoderPool } from '../../agent/decode-pool/pool.js'
import type { BenchContext, BenchResult } from './cli.js'
import { startDecodeThread } from './lib/decode-thread-client.js'
import { rawFixture, type RawFixture } from './lib/netfixture.js'
import { fmt, median, table } from './lib/report.js'
import { pick } from './lib/size.js'

// decode: what one decoder thread does with a slab, and the peer it is held
// against. The same raw NET_EVENTS slabs go through
//   - the decoder's code path on one thread: the class normalisers write
//     lean records straight from the raw C structs into the task's output
//     buffer (agent/normalize/lean-batch.ts), then each batch's context and
//     the CRC-32 of both, as agent/decode-pool/worker.ts runs it per task
//     (lib/decode-thread.ts, in a worker thread with the decoder pool's heap
//     setting, like the peer);
//   - the real piscina decoder worker, one thread, two tasks in flight,
//     each writing into a region of the shared output arena;
//   - the peer: msgpackr's pack (shared/codec.ts settings) of the same
//     records as full OCSF objects, already built: the least any agent that
//     ships full objects must do.
// Variants take turns within each run, so the machine's noise hits all alike.

interface Variant { name: string, run: () => Promise<number> | number }

export interface DecodeData {
  records: number
  slabs: number
  slabBytes: number
  batchBytes: number
  /** median over the batches of (records + context bytes) / records */
  medianBytes: number
  fullBytes: number
  rates: Record<string, number[]>
  medians: Record<string, number>
  ratio: number
  ratios: number[]
}

function canRunWorkers (): boolean {
  // from TypeScript sources a piscina worker needs tsx in its execArgv
  return !import.meta.url.endsWith('.ts') || process.execArgv.some(a => a.includes('tsx'))
}

async function timeWorker (f: RawFixture, pool: DecoderPool, arena: OutputArena): Promise<number> {
  const t0 = performance.now()
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < f.slabs.length) {
      const s = f.slabs[next++]
      // each task writes into a region of the output arena, as agent/commit.ts hands them out
      const region = arena.take()
      const o = await pool.decode({ ring: 'net', offset: s.offset, bytes: s.bytes, records: s.records, bootToWallNs: f.env.bootToWallNs, ...(region !== undefined ? { region } : {}) })
      if (o.records !== s.records) throw new Error(`the decoder worker decoded ${o.records} of ${s.records} records`)
      if (region !== undefined) arena.release(region)
    }
  }
  await Promise.all([lane(), lane()])
  return (performance.now() - t0) / 1000
}

export async function bench (ctx: BenchContext): Promise<BenchResult> {
  const records = pick(ctx, { full: 1_000_000, quick: 250_000, tiny: 20_000 })
  const f = rawFixture(records)
  const thread = await startDecodeThread(records)
  const { batchBytes, medianBytes, fullBytes } = thread.info
  const variants: Variant[] = ['picket', 'msgpackr'].map(name => ({ name, run: async () => await thread.run(name) }))
  let pool: DecoderPool | undefined
  if (canRunWorkers()) {
    const arena = new OutputArena(4, 2 * f.slabBytes + (64 << 10))
    pool = new DecoderPool({
      threads: 1,
      workerData: {
        rings: { net: f.sab },
        arena: arena.shape,
        source: { hostId: 'bench-decode', hostname: 'bench-host', agentVersion: f.shared.metadata.product.version ?? '' },
        rstReasons: f.env.rstReasons,
        noSocketReason: f.env.noSocketReason,
        maxBatchBytes: 3 << 20,
        unmapped: true,
      },
    })
    const p = pool
    variants.push({ name: 'worker', run: async () => await timeWorker(f, p, arena) })
  }

  const rates: Record<string, number[]> = Object.fromEntries(variants.map(v => [v.name, []]))
  const ratios: number[] = []
  ctx.progress.start('decode', ctx.runs + 1)
  try {
    for (const v of variants) await v.run() // warm-up: JIT, the worker's start
    ctx.progress.tick(1, 'warm-up')
    for (let r = 0; r < ctx.runs; r++) {
      // rotate the order run by run
      for (let k = 0; k < variants.length; k++) {
        const v = variants[(k + r) % variants.length]
        rates[v.name].push(records / await v.run())
      }
      ratios.push(rates.picket[r] / rates.msgpackr[r])
      ctx.progress.tick(1, `${fmt(rates.picket[r])} records/s`)
    }
  } finally {
    ctx.progress.stop()
    await pool?.close()
    await thread.close()
  }

  const m: Record<string, number> = Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, median(v)]))
  const ratio = median(ratios)
  const peer = m.msgpackr
  const row = (label: string, key: string, what: string): Array<string | number> =>
    m[key] === undefined ? [label, 'not run', '—', what] : [label, fmt(m[key]), `${(m[key] / peer).toFixed(2)}×`, what]
  const rows = [
    row('**Picket decoder path** (one thread)', 'picket', 'raw records → lean OCSF batches (records + context) written into the task\'s output buffer, and their CRC-32'),
    row('Picket decoder worker (piscina, 1 thread)', 'worker', 'the same, through agent/decode-pool/worker.ts with 2 tasks in flight, into the shared output arena'),
    row('peer: msgpackr `pack`', 'msgpackr', 'the same records as ready-made full OCSF objects → msgpack (shared/codec.ts settings)'),
  ]
  const met = ratio >= 0.5
  const body = [
    `${fmt(records)} raw NET_EVENTS records (the synthetic source's mix: 70% RST with no socket, 10% ICMP unreachable,`,
    `20% TCP state changes, ~5% IPv6) in ${f.slabs.length} slabs of ${f.slabBytes / 1024} KiB (~${fmt(records / f.slabs.length)} records, one decoder task each).`,
    `On the wire: ${medianBytes.toFixed(1)} bytes per record (median over the batches, each batch's context included; ${fmt(batchBytes / records)} on average),`,
    `against ${fmt(fullBytes)} for the same records as full OCSF maps. Every variant runs on one thread, with the decoder pool's heap setting`,
    '(a 48 MB young generation); they take turns within each run. Every record the decoder writes is checked, in',
    'test/agent/lean-decode.test.ts, to expand to exactly the full OCSF object the peer packs.',
    '',
    table(['variant', 'records/s', 'vs bare msgpackr pack', 'work'], rows),
    '',
    table(['target', 'measured', 'met'], [
      ['bytes per network record on the wire (median over the synthetic mix, context included) ≤ 160', `${medianBytes.toFixed(1)}`, medianBytes <= 160 ? 'yes' : '**no**'],
      ['raw → OCSF → msgpack ≥ 50% of a bare msgpackr pack of ready-made objects', `${(ratio * 100).toFixed(0)}% (median of per-run ratios)`, met ? 'yes' : '**no**'],
      ['(reference) the pipeline target, 1,000,000 records/s, on one decoder thread', fmt(m.picket), m.picket >= 1e6 ? 'yes' : '**no**'],
    ]),
    '',
    ...DECODE_PROFILE,
  ].join('\n')
  return {
    title: 'decode: raw records → OCSF → msgpack on one decoder thread',
    body,
    data: { records, slabs: f.slabs.length, slabBytes: f.slabBytes, batchBytes, medianBytes, fullBytes, rates, medians: m, ratio, ratios } satisfies DecodeData,
  }
}

// From a V8 CPU profile of the decoder path (lib/decode-thread.ts's `picket`
// variant, dist build, the decoder's heap setting), taken while writing this
// benchmark; see BENCHMARKS.md for how it was taken.
const DECODE_PROFILE = [
  'Where one thread\'s time goes (a V8 CPU profile of the decoder path with the same heap setting, dist build, taken while writing this',
  'benchmark): three quarters is the network normaliser writing each record (agent/normalize/net.ts: its mapping and the values, a fifth of',
  'that turning IPv4 addresses into text straight from the raw bytes, IPv6 text ~3% of the total), a sixth the batch framing (walking the',
  'common header, dispatching by kind), under a tenth the CRC-32 of each batch, and garbage collection under 3%: a record makes no',
  'object and no string except an IPv6 address. Before the lean wire this path wrote ~757 bytes per record and ran at ~450,000 records/s',
  'on the same machine (Node.js 20), half of it in the msgpack writer and a tenth in garbage collection.',
]
