import { pathToFileURL } from 'node:url'
import { parseCommand, type OptSpec } from '../../shared/config.js'
import { PicketError } from '../../shared/errors.js'
import { rootPath } from '../../shared/paths.js'
import { writeSection } from '../bench/lib/report.js'
import { BACKEND_NODE_ARGS } from '../bench/lib/backend.js'
import { FUZZ_DETECTION_MEMORY, RSS_HEADROOM_BYTES } from '../fuzz/run.js'
import { faultTable, hostileTable, loadResults, saveResults, type Drill, type DrillContext } from './drill.js'
import { FAULT_DRILLS } from './faults.js'
import { HOSTILE_DRILLS } from './hostile.js'

// `npm run reliability [-- drill ...] [--quick] [--no-write]`: run the
// drills for real and rewrite their rows of RELIABILITY.md (and
// scripts/reliability/results.json, which keeps every drill's latest row).

export const RELIABILITY_MD = rootPath('RELIABILITY.md')

/** Every drill, in table order. A new drill module adds its record here. */
export const DRILLS: Readonly<Record<string, Drill>> = { ...HOSTILE_DRILLS, ...FAULT_DRILLS }

/** Drills whose "findings expected" is the baseline's count, measured in the same run. */
const NEEDS_BASELINE = ['collector-down', 'backend-kill', 'agent-kill']

const HEADER = `# Reliability

Written by \`npm run reliability\` (scripts/reliability/cli.ts): every drill below is run for real against a
live backend in its own process (and, for the faults, real \`picket agent\` processes), and its row is
regenerated from that run. \`npm run reliability -- <drill> ...\` reruns some drills and rewrites only their
rows (each row keeps the time it was measured; the rows live in scripts/reliability/results.json).
A drill is an entry in the record of scripts/reliability/hostile.ts or faults.ts (see drill.ts); adding a
row, a NATS drill say, is adding an entry.

The rule each row is held to: bad input gets a clear refusal, nothing is lost, the process stays up, other
hosts are unaffected and memory stays bounded. A number in **bold** breaks it.
`

const SPECS: OptSpec[] = [
  { name: 'quick', type: 'bool', default: false, env: false, help: 'smaller inputs: checks that the drills run, not the numbers to publish' },
  { name: 'no-write', type: 'bool', default: false, env: false, help: 'print the rows only; leave RELIABILITY.md and results.json alone' },
]

export async function run (argv: string[]): Promise<number> {
  const list = Object.entries(DRILLS).map(([n, d]) => `  ${n.padEnd(16)}${d.kind.padEnd(9)}${d.title}`).join('\n')
  const cfg = parseCommand<{ quick: boolean, 'no-write': boolean }>(SPECS, argv, 'npm run reliability -- [drill ...] [--quick]', `Run the reliability drills (default: all) and rewrite their rows of RELIABILITY.md:\n${list}`, { allowPositionals: true })
  if (cfg === undefined) return 0
  let names = cfg.positionals.length > 0 ? cfg.positionals : Object.keys(DRILLS)
  for (const n of names) if (DRILLS[n] === undefined) throw new PicketError('PICKET_ERR_CONFIG', `unknown drill '${n}' (known: ${Object.keys(DRILLS).join(', ')})`)
  if (names.some(n => NEEDS_BASELINE.includes(n)) && !names.includes('baseline')) names = ['baseline', ...names]
  names = Object.keys(DRILLS).filter(n => names.includes(n))
  const ctx: DrillContext = { quick: cfg.values.quick, log: msg => process.stderr.write(`reliability: ${msg}\n`) }
  const command = `npm run reliability${cfg.positionals.length > 0 ? ` -- ${cfg.positionals.join(' ')}` : ''}${cfg.values.quick ? ' --quick' : ''}`
  const all = loadResults()
  let failed = 0
  for (const name of names) {
    const d = DRILLS[name]
    ctx.log(`${name}: ${d.title}`)
    const t0 = Date.now()
    try {
      const result = await d.run(ctx)
      all[name] = { title: d.title, what: d.what, measuredAt: new Date().toISOString(), command, result }
      ctx.log(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${JSON.stringify(result.row)}`)
    } catch (err) {
      failed++
      ctx.log(`${name} failed: ${(err as Error).stack ?? String(err)}`)
    }
  }
  const order = Object.keys(DRILLS)
  const hostile = hostileTable(order, all)
  const faults = faultTable(order, all)
  process.stdout.write(`\n${hostile}\n\n${faults}\n`)
  if (!cfg.values['no-write']) {
    saveResults(all)
    const doc = { header: HEADER, tag: 'reliability' }
    // a section's "Measured ... on" line is this run's: a section none of whose drills ran keeps its own
    const ran = (kind: Drill['kind']): boolean => names.some(n => DRILLS[n].kind === kind)
    if (ran('hostile')) writeSection({ name: 'hostile', title: 'Hostile inputs at a live backend', command, quick: cfg.values.quick, runs: 0, body: `Each drill sends its inputs over real gRPC Ship streams to a backend child process, with an honest host's 16-port scan (from a source no drill uses) alongside; "findings lost" counts that scan's finding missing from the alert store. RSS is the backend process's own: idle before, the peak during, and after the run; a peak more than ${RSS_HEADROOM_BYTES / 2 ** 20} MiB over idle breaks the bound the fuzz test holds it to (the backend runs with a ${FUZZ_DETECTION_MEMORY / 2 ** 20} MiB detection budget per worker and \`${BACKEND_NODE_ARGS.join(' ')}\`, as scripts/fuzz/run.ts states).\n\n${hostile}` }, RELIABILITY_MD, doc)
    if (ran('fault')) writeSection({ name: 'faults', title: 'Faults while data flows', command, quick: cfg.values.quick, runs: 0, body: `Each drill breaks one part of a real stack while records flow and counts what arrived. "Records acked" are the agent's (OK and DUPLICATE); "duplicates" are the backend's DUPLICATE answers and any record it counted twice.\n\n${faults}` }, RELIABILITY_MD, doc)
  }
  return failed > 0 ? 1 : 0
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await run(process.argv.slice(2))
}
