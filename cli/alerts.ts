import { AlertStore, type StoredFinding } from '../backend/store/index.js'
import { parseCommand, type OptSpec } from '../shared/config.js'
import { TRIAGE_STATUSES, type TriageStatus } from '../shared/enums.js'
import { PicketError } from '../shared/errors.js'

// picket alerts: list findings straight from the alert store, so it works
// while the backend is down.

const SPECS: readonly OptSpec[] = [
  { name: 'db', type: 'path', default: 'data/picket.db', help: 'alert store (SQLite) file the backend writes' },
  { name: 'json', type: 'bool', default: false, env: false, help: 'print a JSON array of the OCSF findings' },
  { name: 'status', type: 'enum', choices: TRIAGE_STATUSES, env: false, help: 'only findings with this triage status' },
  { name: 'host', type: 'string', env: false, help: 'only findings about this host id' },
  { name: 'technique', type: 'string', env: false, help: 'only findings of this ATT&CK technique (e.g. T1046)' },
  { name: 'limit', type: 'int', default: 100, min: 1, max: 500, env: false, help: 'newest findings to show' },
]

interface Values { db: string, json: boolean, status?: TriageStatus, host?: string, technique?: string, limit: number }

function ts (ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

function clip (s: string, n: number): string {
  // findings carry attacker-controlled strings: no control characters on a terminal
  const clean = s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
  return clean.length > n ? clean.slice(0, n - 1) + '…' : clean
}

export function formatTable (rows: readonly StoredFinding[]): string {
  const head = ['ID', 'STATUS', 'STATE', 'SEVERITY', 'TECHNIQUE', 'HOST', 'SOURCES', 'PORTS', 'FIRST SEEN', 'LAST SEEN', 'TITLE']
  const body = rows.map(f => [
    f.id.slice(0, 8),
    f.status,
    f.state,
    f.severity,
    f.technique,
    clip(f.hostId ?? `${f.hostsCount} hosts`, 24),
    clip(f.sourcesCount <= 2 ? f.sources.join(',') : `${f.sources[0]} +${f.sourcesCount - 1}`, 32),
    String(f.portCount),
    ts(f.firstSeen),
    ts(f.lastSeen),
    clip(f.title, 60),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map(r => r[i].length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === cells.length - 1 ? c : c.padEnd(widths[i])).join('  ')
  return [line(head), ...body.map(line)].join('\n') + '\n'
}

export async function run (argv: string[]): Promise<number> {
  const cfg = parseCommand<Values>(SPECS, argv, 'picket alerts [options]', 'List findings from the alert store, newest first. Reads the SQLite file directly, so it\nworks while the backend is down.')
  if (cfg === undefined) return 0
  const v = cfg.values
  const store = AlertStore.open(v.db, { readonly: true })
  try {
    const page = store.listFindings({
      ...(v.status !== undefined ? { status: v.status } : {}),
      ...(v.host !== undefined ? { host: v.host } : {}),
      ...(v.technique !== undefined ? { technique: v.technique } : {}),
      limit: v.limit,
    })
    if (v.json) {
      process.stdout.write(JSON.stringify(page.items.map(f => f.finding), null, 2) + '\n')
    } else if (page.items.length === 0) {
      process.stdout.write(`no findings${v.status !== undefined ? ` with status ${v.status}` : ''} in ${v.db}\n`)
    } else {
      process.stdout.write(formatTable(page.items))
      if (page.total > page.items.length) process.stdout.write(`(${page.items.length} of ${page.total}; use --limit or filters to see others)\n`)
    }
  } catch (err) {
    if (err instanceof PicketError) throw err
    throw new PicketError('PICKET_ERR_STORE', `reading ${v.db} failed: ${(err as Error).message}`)
  } finally {
    store.close()
  }
  return 0
}
