import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { rootPath } from '../../shared/paths.js'
import { spawnPicket } from '../helpers/cli.js'

// The benchmarks are not run in CI; this checks they still work. Three of
// them run in their tiniest mode (PICKET_BENCH_TINY=1: seconds, meaningless
// numbers) through the real `picket bench` command line, and each must print
// its table of targets. --no-write must leave BENCHMARKS.md and the saved
// results alone.

const read = (p: string): string | undefined => existsSync(p) ? readFileSync(p, 'utf8') : undefined

t.test('picket bench decode agent-pipeline ingest, tiny, prints each section with its targets', async t => {
  const files = [rootPath('BENCHMARKS.md'), ...['decode', 'agent-pipeline', 'ingest'].map(n => rootPath('scripts', 'bench', 'results', `${n}.json`))]
  const before = files.map(read)
  const p = spawnPicket(['bench', 'decode', 'agent-pipeline', 'ingest', '--runs', '1', '--no-write', '--no-progress'], { env: { PICKET_BENCH_TINY: '1' } })
  const code = await p.exited
  t.equal(code, 0, `picket bench exits 0${code !== 0 ? `; stderr:\n${p.stderr().slice(-3000)}` : ''}`)
  const out = p.stdout()
  for (const title of ['## decode:', '## agent-pipeline:', '## ingest:']) t.match(out, title, `prints the ${title.slice(3, -1)} section`)
  const targets = out.split('| target | measured | met |').length - 1
  t.equal(targets, 3, 'each section has its table of targets beside measured values')
  t.match(out, /\| \*\*Picket decoder path\*\* \(one thread\) \| [\d,]+ \|/, 'decode measured a rate')
  t.match(out, /every scan gives exactly one finding, nothing else \| \d+ of \d+ scans found; 0 missing, 0 extra \| yes/, 'ingest: every scan gave exactly one finding')
  t.same(files.map(read), before, '--no-write leaves BENCHMARKS.md and scripts/bench/results/ alone')
})
