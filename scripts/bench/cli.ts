import { parseCommand, type OptSpec } from '../../shared/config.js'
import { PicketError } from '../../shared/errors.js'
import { createProgress } from './lib/progress.js'
import { writeSection, type Section } from './lib/report.js'

// `picket bench [name ...] [--quick]` and `npm run bench`: run benchmarks,
// print their tables and rewrite their sections of BENCHMARKS.md.

export interface BenchContext {
  quick: boolean
  /** runs per configuration (medians are reported) */
  runs: number
  progress: ReturnType<typeof createProgress>
  /** the exact command line, for the report */
  command: string
  /** false with --no-write: a benchmark writes no file (the plot's chart) */
  write: boolean
}

export interface BenchResult {
  title: string
  body: string
  /** machine-readable results, kept in scripts/bench/results/<name>.json for the plot */
  data?: unknown
  /** runs behind the medians, when not ctx.runs (for the section's header) */
  runs?: number
}

export type Bench = (ctx: BenchContext) => Promise<BenchResult>

export const BENCHES: Record<string, { summary: string, load: () => Promise<{ bench: Bench }> }> = {
  capture: { summary: 'repeated- and unique-flow connection storms: nothing vs the floor vs picket agent vs libbpf-tools tcpstates (needs root)', load: async () => await import('./capture.js') },
  dns: { summary: 'DNS query storm against a local dnsmasq: nothing vs the floor vs picket agent --class dns, query rate and agent CPU per query (needs root)', load: async () => await import('./dns.js') },
  decode: { summary: 'raw NET_EVENTS → OCSF → msgpack on one decoder thread, vs a bare msgpackr pack', load: async () => await import('./decode.js') },
  'agent-pipeline': { summary: 'synthetic records → slabs → piscina decoders → gRPC to a loopback sink', load: async () => await import('./agent-pipeline.js') },
  'agent-steady': { summary: 'agent CPU on an idle host (kernel source) and RSS over minutes at a steady 20k records/s (needs root)', load: async () => await import('./agent-steady.js') },
  ingest: { summary: 'injector → collector → detection across 1,000 hosts; crossing-record → finding latency', load: async () => await import('./ingest.js') },
  scale: { summary: '10,000 hosts trickling, 20 scanned: backend RSS, records/s, one finding per scan', load: async () => await import('./scale.js') },
  'scale-out': { summary: 'in process vs NATS JetStream with 1 and 2 detection nodes: records/s, CPU per record, p99, partition takeover', load: async () => await import('./scale-out.js') },
  plot: { summary: 'chart of throughput and latency against host count (SVG, linked from BENCHMARKS.md)', load: async () => await import('./plot.js') },
}

const SPECS: OptSpec[] = [
  { name: 'quick', type: 'bool', default: false, env: 'PICKET_BENCH_QUICK', help: 'fewer, shorter runs: each benchmark under a minute' },
  { name: 'runs', type: 'int', min: 1, max: 50, env: false, help: 'runs per configuration (default 5, quick 3)' },
  { name: 'no-write', type: 'bool', default: false, env: false, help: 'print tables only; leave BENCHMARKS.md and scripts/bench/results/ alone' },
  { name: 'no-progress', type: 'bool', default: false, env: false, help: 'no progress bar' },
]

export async function run (argv: string[]): Promise<number> {
  const list = Object.entries(BENCHES).map(([n, b]) => `  ${n.padEnd(16)}${b.summary}`).join('\n')
  const cfg = parseCommand<{ quick: boolean, runs?: number, 'no-write': boolean, 'no-progress': boolean }>(SPECS, argv, 'picket bench [name ...] [--quick]', `Run benchmarks (default: all, in this order) and update BENCHMARKS.md:\n${list}`, { allowPositionals: true })
  if (cfg === undefined) return 0
  const names = cfg.positionals.length > 0 ? cfg.positionals : Object.keys(BENCHES)
  for (const n of names) {
    if (BENCHES[n] === undefined) throw new PicketError('PICKET_ERR_CONFIG', `unknown benchmark '${n}' (known: ${Object.keys(BENCHES).join(', ')})`)
  }
  const quick = cfg.values.quick
  const ctx: BenchContext = {
    quick,
    runs: cfg.values.runs ?? (quick ? 3 : 5),
    progress: createProgress(!cfg.values['no-progress']),
    command: '',
    write: !cfg.values['no-write'],
  }
  let failed = 0
  for (const name of names) {
    ctx.command = `picket bench ${name}${quick ? ' --quick' : ''}${cfg.values.runs !== undefined ? ` --runs ${cfg.values.runs}` : ''}`
    process.stderr.write(`bench: ${name}: ${BENCHES[name].summary}\n`)
    try {
      const { bench } = await BENCHES[name].load()
      const res = await bench(ctx)
      ctx.progress.stop()
      const section: Section = { name, title: res.title, command: ctx.command, quick, runs: res.runs ?? ctx.runs, body: res.body }
      process.stdout.write(`\n## ${res.title}\n\n${res.body.trim()}\n\n`)
      if (res.data !== undefined && !cfg.values['no-write']) {
        const { saveResults } = await import('./lib/results.js')
        saveResults(name, res.data)
      }
      if (!cfg.values['no-write']) writeSection(section)
    } catch (err) {
      ctx.progress.stop()
      failed++
      process.stderr.write(`bench: ${name} failed: ${(err as Error).stack ?? String(err)}\n`)
    }
  }
  return failed > 0 ? 1 : 0
}
