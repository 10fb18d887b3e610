import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { rootPath } from '../../shared/paths.js'
import { fmt, table } from '../bench/lib/report.js'
import { RSS_HEADROOM_BYTES } from '../fuzz/run.js'

// A drill is one row of RELIABILITY.md: something hostile or broken done to
// a real stack, and what came of it. Two kinds, one table each:
//   hostile  inputs sent at a live backend: refused by reason, crashes,
//            findings lost (an honest host's scan sent alongside), RSS
//   fault    a part of the stack fails while data flows: records sent and
//            acked, findings expected and stored, duplicates, recovery time
// A drill module exports a Record<name, Drill>; cli.ts lists the modules.
// Adding a row (a NATS drill, say) is one more entry in such a record.

export interface DrillContext {
  /** smaller inputs, for a check that the drills still run */
  quick: boolean
  log: (msg: string) => void
}

export interface HostileRow {
  /** messages sent (Batches, or bytes standing in for one) */
  inputs: number
  /** refusals by reason (PICKET_ERR_ code and limit, or the gRPC status that ended a stream) */
  refused: Record<string, number>
  /** acked OK */
  accepted: number
  crashes: number
  /** the honest scan's findings that did not reach the store (expected 1) */
  findingsLost: number
  rss: { before: number, peak: number, after: number }
  notes: string
}

export interface FaultRow {
  recordsSent: number
  recordsAcked: number
  /** what the same records give without the fault (the baseline drill's count), or what the rules must find */
  findingsExpected: number
  findingsStored: number
  duplicates: string
  /** from the fault's end (the part is back) until everything sent is acked; undefined when it never was */
  recoverMs: number | undefined
  notes: string
}

export type DrillResult = { kind: 'hostile', row: HostileRow } | { kind: 'fault', row: FaultRow }

export interface Drill {
  /** the row's label */
  title: string
  /** what is done, one sentence (shown under the table) */
  what: string
  kind: DrillResult['kind']
  run: (ctx: DrillContext) => Promise<DrillResult>
}

/** Every drill's latest result, so that running a few drills rewrites only their rows. */
export const RESULTS_JSON = rootPath('scripts', 'reliability', 'results.json')

export interface StoredResult { title: string, what: string, measuredAt: string, command: string, result: DrillResult }

export function loadResults (path = RESULTS_JSON): Record<string, StoredResult> {
  return existsSync(path) ? JSON.parse(readFileSync(path, 'utf8')) as Record<string, StoredResult> : {}
}

export function saveResults (all: Record<string, StoredResult>, path = RESULTS_JSON): void {
  writeFileSync(path, JSON.stringify(all, null, 2) + '\n')
}

const mib = (b: number): string => Number.isFinite(b) ? `${Math.round(b / 2 ** 20)}` : 'n/a'
const when = (iso: string): string => iso.slice(0, 16).replace('T', ' ')

function reasons (r: Record<string, number>): string {
  const e = Object.entries(r).sort((a, b) => b[1] - a[1])
  return e.length === 0 ? '—' : e.map(([k, v]) => `${fmt(v)} ${k}`).join('<br>')
}

type RowOf<K extends DrillResult['kind']> = Extract<DrillResult, { kind: K }>['row']

/** One table of the drills of a kind, in `order`, each row's cells from `cells`, and a note per drill under it. */
function drillTable<K extends DrillResult['kind']> (kind: K, header: string[], cells: (r: RowOf<K>) => string[], order: readonly string[], all: Record<string, StoredResult>): string {
  const rows: string[][] = []
  const notes: string[] = []
  for (const name of order) {
    const s = all[name]
    if (s?.result.kind !== kind) continue
    const r = s.result.row as RowOf<K>
    rows.push([`**${s.title}**`, ...cells(r), when(s.measuredAt)])
    notes.push(`- **${s.title}** (\`${name}\`): ${s.what}${r.notes !== '' ? ` ${r.notes}` : ''}`)
  }
  return [table(['drill', ...header, 'measured (UTC)'], rows), '', ...notes].join('\n')
}

const bold = (s: string, yes: boolean): string => yes ? `**${s}**` : s

export function hostileTable (order: readonly string[], all: Record<string, StoredResult>): string {
  return drillTable('hostile', ['inputs sent', 'refused, by reason', 'acked OK', 'crashes', 'findings lost', 'RSS MiB: before → peak → after'], r => [
    fmt(r.inputs), reasons(r.refused), fmt(r.accepted), bold(String(r.crashes), r.crashes > 0), bold(String(r.findingsLost), r.findingsLost > 0),
    bold(`${mib(r.rss.before)} → ${mib(r.rss.peak)} → ${mib(r.rss.after)}`, !(r.rss.peak - r.rss.before <= RSS_HEADROOM_BYTES)),
  ], order, all)
}

export function faultTable (order: readonly string[], all: Record<string, StoredResult>): string {
  return drillTable('fault', ['records sent', 'records acked', 'findings expected', 'findings stored', 'duplicates', 'time to recover'], r => [
    fmt(r.recordsSent), bold(fmt(r.recordsAcked), r.recordsAcked < r.recordsSent), fmt(r.findingsExpected), bold(fmt(r.findingsStored), r.findingsStored !== r.findingsExpected),
    r.duplicates, r.recoverMs === undefined ? '—' : `${(r.recoverMs / 1000).toFixed(1)} s`,
  ], order, all)
}
