import { bigBatch, plainShipment, scanRecords, type MutationClass, type ScanSpec } from '../fuzz/batches.js'
import { DEFAULT_SEED, HONEST_HOST, failedChecks, runFuzz, type Crash, type EpisodeMaker, type FuzzOptions, type FuzzReport } from '../fuzz/run.js'
import { nthAddress } from '../injector/plan.js'
import type { Drill, DrillContext, DrillResult } from './drill.js'

// The hostile-input drills: the fuzz test's run, and one drill per attack
// the issue confirmed live (issue 11, defects 1, 2 and 4 to 7), each sent
// at a live backend in its own process by the fuzzer's runner
// (scripts/fuzz/run.ts), with an honest host's 16-port scan alongside.

/** The first line of the error a crash left on stderr, and where it was thrown in Picket's code. */
function crashCause (c: Crash): string {
  // the uncaught error Node printed, not the JSON log lines before it
  const lines = c.stderr.split('\n').filter(l => !l.trimStart().startsWith('{'))
  const i = lines.findIndex(l => /^\w*Error\b/.test(l.trim()))
  if (i < 0) return `exit ${c.exit}`
  const at = lines.slice(i + 1).find(l => /\bat .*\/(backend|shared)\//.test(l))?.trim().replace(/\(.*\/(backend|shared)\//, '($1/')
  return `${lines[i].trim()}${at !== undefined ? ` ${at}` : ''}`
}

function row (r: FuzzReport, extra = ''): DrillResult {
  const notes: string[] = []
  if (r.crashes.length > 0) notes.push(`Each crash: ${[...new Set(r.crashes.map(crashCause))].join('; ')}${r.stoppedEarly ? `; the run stopped after ${r.crashes.length} crashes` : ''}.`)
  if (r.honest.findings !== 1) notes.push(`The honest scan's batch was answered ${r.honest.acks}${r.honest.error !== undefined ? ` (${r.honest.error})` : ''}.`)
  const failed = failedChecks(r).filter(f => !/died|honest|RSS/.test(f))
  if (failed.length > 0) notes.push(`Also: ${failed.join('; ')}.`)
  if (Number.isFinite(r.metricsBytes)) notes.push(`/metrics ended at ${Math.round(r.metricsBytes / 1024)} KB.`)
  return {
    kind: 'hostile',
    row: {
      inputs: r.batches,
      refused: r.reasons,
      accepted: r.answers.OK ?? 0,
      crashes: r.crashes.length,
      findingsLost: Math.max(0, 1 - r.honest.findings),
      rss: { before: r.rss.idle, peak: r.rss.peak, after: r.rss.final },
      notes: [extra, ...notes].filter(s => s !== '').join(' '),
    },
  }
}

const scan = (ports: number): ScanSpec => ({ ports, firstPort: 999, stride: 1, open: false, udp: false, v6: false, ageMs: 0, spacingMs: 1 })

/** `n` episodes of one batch each, built by `make(i, now)`. */
function * episodes (n: number, make: (i: number, now: number) => { hostId: string, seq: bigint, records: readonly unknown[] | Uint8Array, classes: MutationClass[], label: string }): Generator<EpisodeMaker> {
  for (let i = 0; i < n; i++) {
    yield now => {
      const b = make(i, now)
      return { index: i, hostId: b.hostId, shipments: [plainShipment({ seed: 0, episode: i, ...b })] }
    }
  }
}

async function drive (ctx: DrillContext, name: string, o: FuzzOptions): Promise<FuzzReport> {
  return await runFuzz({ ...o, progress: p => ctx.log(`${name}: ${p.sent}/${p.of} messages, ${p.crashes} crash(es), RSS ${(p.rss / 2 ** 20).toFixed(0)} MiB`) })
}

/** `o.batches` batches of `o.per` scan records to one host, in seq order, record k of the flood changed by `edit`. */
async function flood (ctx: DrillContext, name: string, o: { batches: number, per: number, source: number, classes: MutationClass[], label: string }, edit: (r: Record<string, unknown>, k: number) => void): Promise<DrillResult> {
  const hostId = `drill-${name}`
  return row(await drive(ctx, name, {
    batches: o.batches,
    episodes: episodes(o.batches, (i, now) => {
      const records = scanRecords(scan(o.per), o.per, hostId, o.source, now)
      records.forEach((r, j) => edit(r, i * o.per + j))
      return { hostId, seq: BigInt(i + 1), records, classes: o.classes, label: o.label }
    }),
  }))
}

const BAD_TIMES = [NaN, -1e20, Infinity, -Infinity, -(2 ** 53), 8.64e15 + 1]

export const HOSTILE_DRILLS: Record<string, Drill> = {
  fuzz: {
    title: 'fuzz: 10,000 mutated batches',
    what: `The fuzz test's run (test/fuzz/collector-fuzz.test.ts, seed ${DEFAULT_SEED}): structure-aware mutations of real scan batches in every class of scripts/fuzz/batches.ts, 8 streams at once; after a crash the backend is restarted (at most 3 times).`,
    kind: 'hostile',
    run: async ctx => row(await drive(ctx, 'fuzz', { seed: DEFAULT_SEED, batches: ctx.quick ? 2000 : 10_000, maxCrashes: 3 })),
  },
  'bad-times': {
    title: 'scans stamped with impossible times',
    what: `Defect 1: 20-port scans, each from its own source to its own host, every record's time one of ${BAD_TIMES.map(String).join(', ')}. The run stops after 5 crashes.`,
    kind: 'hostile',
    run: async ctx => {
      const n = ctx.quick ? 60 : 300
      return row(await drive(ctx, 'bad-times', {
        batches: n,
        maxCrashes: 5,
        episodes: episodes(n, (i, now) => {
          const hostId = `drill-time-${i}`
          const t = BAD_TIMES[i % BAD_TIMES.length]
          const records = scanRecords(scan(20), 20, hostId, i, now)
          for (const r of records) r.time = t
          return { hostId, seq: 1n, records, classes: ['ranges'], label: `20-port scan at time ${t}` }
        }),
      }))
    },
  },
  'seq-poison': {
    title: 'seq poisoning of a live host',
    what: `Defect 2: 4,100 empty batches that claim the honest host's id (${HONEST_HOST}) with seqs just under 2^53, on 41 streams; then the honest host's own scan, from seq 1.`,
    kind: 'hostile',
    run: async ctx => {
      const per = 100
      const streams = 41
      const makers = function * (): Generator<EpisodeMaker> {
        for (let e = 0; e < streams; e++) {
          yield () => ({
            index: e,
            hostId: HONEST_HOST,
            shipments: Array.from({ length: per }, (_, j) => plainShipment({ seed: 0, episode: e, hostId: HONEST_HOST, seq: 2n ** 53n - 1n - BigInt(e * per + j), records: [], classes: ['seq', 'host'] as MutationClass[], label: 'empty batch, seq near 2^53, claiming the honest host' })),
          })
        }
      }
      return row(await drive(ctx, 'seq-poison', { batches: per * streams, honestAt: per * streams, episodes: makers() }))
    },
  },
  'fake-hosts': {
    title: '10,000 fake host ids',
    what: 'Defect 4: one empty batch from each of 10,000 host ids nobody runs.',
    kind: 'hostile',
    run: async ctx => {
      const n = ctx.quick ? 2000 : 10_000
      return row(await drive(ctx, 'fake-hosts', { batches: n, concurrency: 16, episodes: episodes(n, i => ({ hostId: `drill-fake-${i}`, seq: 1n, records: [], classes: ['host'], label: 'empty batch from a new host id' })) }))
    },
  },
  'many-sources': {
    title: '100,000 sources against one host',
    what: 'Defect 5: batches of 1,000 refused probes, each record from its own source, all to one host (one port per source).',
    kind: 'hostile',
    run: async ctx => await flood(ctx, 'many-sources', { batches: ctx.quick ? 20 : 100, per: 1000, source: 0, classes: ['size'], label: '1,000 probes from 1,000 sources' },
      (r, k) => { (r.src_endpoint as { ip: string }).ip = nthAddress('100.96.0.0', k) }),
  },
  'string-ports': {
    title: '300,000 distinct string "ports"',
    what: 'Defect 6: one source probes one host with batches of 2,000 records whose dst_endpoint.port is a distinct string ("p1", "p2", ...).',
    kind: 'hostile',
    run: async ctx => await flood(ctx, 'string-ports', { batches: ctx.quick ? 30 : 150, per: 2000, source: 7, classes: ['types'], label: '2,000 string ports' },
      (r, k) => { (r.dst_endpoint as { port: unknown }).port = `p${k}` }),
  },
  'oversize-storm': {
    title: 'oversize batches on 40 streams at once',
    what: 'Defect 7: 40 streams each send one 16 MiB batch at the same time (the collector\'s max_batch_bytes is 8 MiB); RSS "after" is read 10 s later.',
    kind: 'hostile',
    run: async ctx => {
      const n = ctx.quick ? 10 : 40
      const big = bigBatch(16 * 2 ** 20)
      return row(await drive(ctx, 'oversize-storm', {
        batches: n,
        concurrency: n,
        settleMs: 10_000,
        episodes: episodes(n, i => ({ hostId: `drill-storm-${i}`, seq: 1n, records: big, classes: ['size'], label: '16 MiB batch' })),
      }))
    },
  },
}
