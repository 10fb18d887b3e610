import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { rootPath } from '../../../shared/paths.js'

// BENCHMARKS.md is written by the benchmarks: each owns one section between
// markers, regenerated from a real run. Text outside the markers is kept.

export const BENCHMARKS_MD = rootPath('BENCHMARKS.md')

export function machine (): string {
  const c = cpus()
  return `${c.length} × ${c[0]?.model.trim() ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${release()}, Node.js ${process.version}`
}

export function median (xs: number[]): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}

export function quantile (xs: number[], q: number): number {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]
}

export function fmt (n: number, digits = 0): string {
  if (!Number.isFinite(n)) return 'n/a'
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function pct (ratio: number, digits = 1): string {
  if (!Number.isFinite(ratio)) return 'n/a'
  const v = (ratio - 1) * 100
  return `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}%`
}

export function table (header: string[], rows: Array<Array<string | number>>): string {
  const line = (cells: Array<string | number>): string => `| ${cells.map(String).join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

export interface Section {
  /** benchmark name, also the marker id */
  name: string
  title: string
  command: string
  quick: boolean
  /** runs behind the medians; 0 when the section has none (the plot) */
  runs: number
  body: string
}

export function renderSection (s: Section): string {
  return [
    `## ${s.title}`,
    '',
    `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${machine()}; load average ${loadavg().map(x => x.toFixed(1)).join(' / ')} (1 / 5 / 15 min) when it ended.`,
    `Command: \`${s.command}\`${s.quick ? ' (quick mode: fewer and shorter runs; run without --quick for the full numbers)' : ''}${s.runs > 0 ? `; medians of ${s.runs} run${s.runs === 1 ? '' : 's'}` : ''}.`,
    '',
    s.body.trim(),
    '',
  ].join('\n')
}

const HEADER = `# Benchmarks

Written by \`npm run bench\` (\`picket bench <name>\`); each section below is
regenerated from a real run by the script under \`scripts/bench/\` that owns
it. This machine is shared and noisy, so every number that matters is a
ratio against a peer or a limit measured side by side in the same run:
\`tcpstates\` for capture, a bare msgpack pack/decode for the pipelines.
Targets are stated beside the measured values, and a shortfall is said plainly.
`

/**
 * Rewrite section `s` of a document between its markers (`<!-- <tag>:<name>:start -->`),
 * appending it when it is new. BENCHMARKS.md by default; RELIABILITY.md passes its own.
 */
export function writeSection (s: Section, path = BENCHMARKS_MD, doc0: { header: string, tag: string } = { header: HEADER, tag: 'bench' }): void {
  let doc = existsSync(path) ? readFileSync(path, 'utf8') : doc0.header
  const start = `<!-- ${doc0.tag}:${s.name}:start -->`
  const end = `<!-- ${doc0.tag}:${s.name}:end -->`
  const block = `${start}\n${renderSection(s)}${end}`
  const i = doc.indexOf(start)
  const j = doc.indexOf(end)
  if (i >= 0 && j > i) doc = doc.slice(0, i) + block + doc.slice(j + end.length)
  else doc = doc.trimEnd() + '\n\n' + block + '\n'
  writeFileSync(path, doc)
}
