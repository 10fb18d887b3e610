import { pathToFileURL } from 'node:url'
import { parseCommand, type OptSpec } from '../../shared/config.js'
import { MUTATION_CLASSES } from './batches.js'
import { DEFAULT_SEED, failedChecks, formatFuzzReport, runFuzz } from './run.js'

// `npm run fuzz -- --count 1000000 [--seed N]`: the long run of the fuzz
// test (test/fuzz/collector-fuzz.test.ts runs 10,000 messages of the same
// generator). Exits 1 when a check fails. A crash names the episodes in
// flight; `--from <episode> --count <n>` replays the seed's stream from one.

const SPECS: OptSpec[] = [
  { name: 'count', type: 'int', min: 1, default: 10_000, env: false, help: 'messages to send (Batches, or bytes standing in for one)' },
  { name: 'seed', type: 'int', default: DEFAULT_SEED, env: false, help: 'generator seed; the same seed sends the same episodes' },
  { name: 'from', type: 'int', min: 0, default: 0, env: false, help: 'first episode of the seed\'s stream (replay from a crash\'s episode)' },
  { name: 'concurrency', type: 'int', min: 1, max: 256, default: 8, env: false, help: 'Ship streams at once' },
  { name: 'max-crashes', type: 'int', min: 1, default: 10, env: false, help: 'backend deaths (each followed by a restart) before the run stops' },
  { name: 'workers', type: 'int', min: 1, max: 64, default: 2, env: false, help: 'detection worker threads of the backend' },
  { name: 'no-bisect', type: 'bool', default: false, env: false, help: 'after a crash, do not replay its suspects on fresh backends to name the episode that killed it' },
  { name: 'json', type: 'bool', default: false, env: false, help: 'print the report as JSON' },
]

interface Values { count: number, seed: number, from: number, concurrency: number, 'max-crashes': number, workers: number, 'no-bisect': boolean, json: boolean }

export async function run (argv: string[]): Promise<number> {
  const classes = Object.entries(MUTATION_CLASSES).map(([k, v]) => `  ${k.padEnd(10)}${v}`).join('\n')
  const cfg = parseCommand<Values>(SPECS, argv, 'npm run fuzz -- [--count N] [--seed N]', `Send mutated batches at a live backend (a child process) over gRPC and check that it stays up,\nnames every refusal, still finds an honest host's scan and keeps its RSS bounded. Mutation classes:\n${classes}`)
  if (cfg === undefined) return 0
  const v = cfg.values
  process.stderr.write(`fuzz: seed ${v.seed}, ${v.count} messages from episode ${v.from}, ${v.concurrency} streams at once\n`)
  const r = await runFuzz({
    seed: v.seed,
    batches: v.count,
    firstEpisode: v.from,
    concurrency: v.concurrency,
    maxCrashes: v['max-crashes'],
    workers: v.workers,
    bisect: !v['no-bisect'],
    progress: p => process.stderr.write(`fuzz: ${p.sent}/${p.of} messages, ${p.crashes} crash(es), backend RSS ${(p.rss / 2 ** 20).toFixed(0)} MiB\n`),
  })
  process.stdout.write(v.json ? JSON.stringify(r, null, 2) + '\n' : formatFuzzReport(r) + '\n')
  const failed = failedChecks(r)
  process.stdout.write(failed.length === 0 ? 'fuzz: every check passed\n' : `fuzz: FAILED: ${failed.join('; ')}\n`)
  return failed.length === 0 ? 0 : 1
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await run(process.argv.slice(2))
}
