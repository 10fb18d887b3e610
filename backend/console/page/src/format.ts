import type { DropCause, TriageStatus } from '../../../../shared/enums.js'

// Times are shown in UTC, as SOC tooling and logs usually are; the server's
// clock (from the event stream) is "now", so "ago" does not drift with the
// operator's laptop clock.

let skewMs = 0

export function setServerTime (serverTime: number): void {
  skewMs = serverTime - Date.now()
}

export function now (): number {
  return Date.now() + skewMs
}

const pad = (n: number, w = 2): string => String(n).padStart(w, '0')

export function utc (ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '—'
  const d = new Date(ms)
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`
}

export function utcMs (ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '—'
  return `${utc(ms)}.${pad(new Date(ms).getUTCMilliseconds(), 3)}`
}

export function iso (ms: number): string {
  return Number.isFinite(ms) && ms > 0 ? new Date(ms).toISOString() : ''
}

export function duration (ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—'
  if (ms < 1000) return `${Math.round(ms)} ms`
  const s = ms / 1000
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`
  const m = s / 60
  if (m < 60) return `${Math.floor(m)} min ${Math.round(s % 60)} s`
  const h = m / 60
  if (h < 48) return `${Math.floor(h)} h ${Math.round(m % 60)} min`
  return `${Math.round(h / 24)} d`
}

export function ago (ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return 'never'
  const d = now() - ms
  if (d < 5000) return 'just now'
  return `${duration(d).replace(/ \d+ (s|min)$/, '')} ago`
}

export function num (n: number): string {
  if (!Number.isFinite(n)) return '—'
  return n.toLocaleString('en-US', { maximumFractionDigits: n < 10 ? 2 : n < 100 ? 1 : 0 })
}

export function bytes (n: number): string {
  if (!Number.isFinite(n)) return '—'
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++ }
  return `${n < 10 && i > 0 ? n.toFixed(1) : Math.round(n)} ${u[i]}`
}

export const STATUS_LABEL: Record<TriageStatus, string> = {
  new: 'New',
  in_progress: 'In progress',
  resolved: 'Resolved',
  false_positive: 'False positive',
}

export function statusLabel (s: string): string {
  return (STATUS_LABEL as Record<string, string>)[s] ?? s
}

export function severityClass (id: number): string {
  return `sev sev-${Number.isInteger(id) && id >= 0 && id <= 6 ? id : 0}`
}

export const DROP_LABEL: Record<DropCause, string> = {
  kernel_reserve: 'kernel ring full',
  kernel_recursion: 'kernel recursion',
  slab_starvation: 'slab starvation',
  spool_eviction: 'spool eviction',
  decode_error: 'decode error',
  refused: 'refused by collector',
}

/** "a, b, c +4 more" */
export function listSummary (items: string[], total: number, show = 2): string {
  const head = items.slice(0, show)
  const more = Math.max(total, items.length) - head.length
  return head.join(', ') + (more > 0 ? ` +${more} more` : '')
}

/** A string or number from a finding's JSON as text; anything else as ''. */
export function str (v: unknown): string {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : ''
}

/** An object from a finding's JSON, or {} for anything else. */
export function obj (v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : {}
}
