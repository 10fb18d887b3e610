import { TRIAGE_STATUSES, type TriageStatus } from '../../../../shared/enums.js'
import type { FindingRow, StreamFinding } from '../../types.js'
import { ApiError, listFindings, type FindingFilters } from './api.js'
import { h, replace } from './dom.js'
import { ago, iso, listSummary, now, num, severityClass, STATUS_LABEL, statusLabel, utc } from './format.js'
import type { Live } from './live.js'
import { announce, banner, clearBanner, type View } from './view.js'

// The findings table: newest first, filtered by status, host, technique,
// rule and time, a page at a time; rows the stream announces are added (or updated in
// place) without a reload. A row is a keyboard stop: Enter or Space opens
// it, the arrow keys move between rows.

// the statuses still waiting for someone: the default view
const OPEN_FILTER = (['new', 'in_progress'] satisfies TriageStatus[]).join(',')

const STATUS_OPTIONS: Array<[string, string]> = [
  [OPEN_FILTER, 'Open (new, in progress)'],
  ['', 'Any status'],
  ...TRIAGE_STATUSES.map((s): [string, string] => [s, STATUS_LABEL[s]]),
]

const TIME_OPTIONS: Array<[string, string]> = [
  ['', 'Any time'],
  ['15m', 'Last 15 minutes'],
  ['1h', 'Last hour'],
  ['24h', 'Last 24 hours'],
  ['7d', 'Last 7 days'],
]

const DEFAULT_FILTERS: FindingFilters = { status: OPEN_FILTER, host: '', technique: '', rule: '', since: '' }

// as the API's schema admits them (backend/console/schemas.ts); a technique is upper-cased before it is sent
const TECHNIQUE_PATTERN = '[Tt][0-9]{4}(\\.[0-9]{3})?'
const RULE_PATTERN = '[A-Za-z0-9][A-Za-z0-9._:\\-]*'

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 }

export function filtersFromQuery (q: URLSearchParams): FindingFilters {
  return {
    status: q.has('status') ? q.get('status') ?? '' : DEFAULT_FILTERS.status,
    host: q.get('host') ?? '',
    technique: q.get('technique') ?? '',
    rule: q.get('rule') ?? '',
    since: q.get('since') ?? '',
  }
}

function filtersToQuery (f: FindingFilters): string {
  const q = new URLSearchParams()
  if (f.status !== DEFAULT_FILTERS.status) q.set('status', f.status ?? '')
  if (f.host !== undefined && f.host !== '') q.set('host', f.host)
  if (f.technique !== undefined && f.technique !== '') q.set('technique', f.technique)
  if (f.rule !== undefined && f.rule !== '') q.set('rule', f.rule)
  if (f.since !== undefined && f.since !== '') q.set('since', f.since)
  const s = q.toString()
  return s === '' ? '' : `?${s}`
}

/** Does a row the stream sent belong in the table as filtered? (The server applies the same rules to the lists.) */
function matches (r: FindingRow, f: FindingFilters): boolean {
  if (f.status !== undefined && f.status !== '' && !f.status.split(',').includes(r.status)) return false
  if (f.host !== undefined && f.host !== '' && r.hostId !== f.host && !r.hosts.includes(f.host)) return false
  if (f.technique !== undefined && f.technique !== '' && r.technique !== f.technique) return false
  if (f.rule !== undefined && f.rule !== '' && r.rule !== f.rule) return false
  if (f.since !== undefined && f.since !== '') {
    const m = /^(\d+)([mhd])$/.exec(f.since)
    if (m !== null && r.lastSeen < now() - Number(m[1]) * UNIT_MS[m[2]]) return false
  }
  return true
}

function timeCell (ms: number, label: string, withAgo: boolean): HTMLTableCellElement {
  return h('td', { 'data-label': label, class: 'time' },
    h('time', { datetime: iso(ms) }, utc(ms)),
    withAgo ? h('span', { class: 'sub ago', 'data-ago': ms }, ago(ms)) : null)
}

function hostCell (r: FindingRow): HTMLTableCellElement {
  if (r.hostId === null) {
    return h('td', { 'data-label': 'Host' }, h('span', { class: 'strong' }, `${num(r.hostsCount)} hosts`), h('span', { class: 'sub' }, listSummary(r.hosts, r.hostsCount)))
  }
  const name = r.hostname !== null && r.hostname !== '' ? r.hostname : r.hostId
  return h('td', { 'data-label': 'Host', class: 'wrap' },
    h('span', { class: 'strong' }, name),
    name !== r.hostId ? h('span', { class: 'sub mono' }, r.hostId) : null)
}

export function statusBadge (status: string, state?: string): HTMLElement {
  return h('span', { class: `status st-${status}` }, statusLabel(status), state === 'open' ? h('span', { class: 'active', title: 'still going on: the finding keeps updating' }, ' · active') : null)
}

function rowEl (r: FindingRow, open: (id: string) => void): HTMLTableRowElement {
  const name = r.hostId === null ? `${r.hostsCount} hosts` : (r.hostname !== null && r.hostname !== '' ? r.hostname : r.hostId)
  const tr = h('tr', {
    tabindex: 0,
    class: 'row',
    'data-id': r.id,
    'aria-label': `${r.severity} ${r.technique} finding on ${name}, ${statusLabel(r.status)}; press Enter for details`,
  },
  h('td', { 'data-label': 'Severity' }, h('span', { class: severityClass(r.severityId) }, r.severity)),
  h('td', { 'data-label': 'Technique', class: 'wrap' },
    h('span', { class: 'strong' }, h('span', { class: 'mono' }, r.technique), r.findingType !== '' ? ` ${r.findingType}` : ''),
    h('span', { class: 'sub' }, r.techniqueName)),
  hostCell(r),
  h('td', { 'data-label': 'Sources', class: 'mono wrap' }, r.sourcesCount > 0 ? listSummary(r.sources, r.sourcesCount) : '—'),
  // ports count for scans only; a process, file or DNS finding counts matching events
  h('td', { 'data-label': 'Ports', class: 'num' }, r.scan ? num(r.portCount) : '—'),
  timeCell(r.firstSeen, 'First seen', false),
  timeCell(r.lastSeen, 'Last seen', true),
  h('td', { 'data-label': 'Status' }, statusBadge(r.status, r.state)),
  )
  tr.addEventListener('click', () => open(r.id))
  return tr
}

export class FindingsView implements View {
  readonly #live: Live
  #filters: FindingFilters
  readonly #rows = new Map<string, { row: FindingRow, tr: HTMLTableRowElement }>()
  #cursor: string | undefined
  #total = 0
  #loadSeq = 0
  readonly #focusId: string | undefined
  #tbody!: HTMLTableSectionElement
  #count!: HTMLElement
  #more!: HTMLButtonElement
  #empty!: HTMLElement
  #table!: HTMLTableElement

  constructor (live: Live, filters: FindingFilters, focusId?: string) {
    this.#live = live
    this.#filters = { ...DEFAULT_FILTERS, ...filters }
    this.#focusId = focusId
  }

  async mount (main: HTMLElement): Promise<void> {
    document.title = 'Findings · Picket'
    const statusSel = h('select', { id: 'f-status', name: 'status' }, ...STATUS_OPTIONS.map(([v, l]) => h('option', { value: v }, l)))
    statusSel.value = this.#filters.status ?? ''
    const hostIn = h('input', { id: 'f-host', name: 'host', type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'host id', maxlength: 256 })
    hostIn.value = this.#filters.host ?? ''
    const techIn = h('input', { id: 'f-technique', name: 'technique', type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'T1046', maxlength: 16, pattern: TECHNIQUE_PATTERN, title: 'a MITRE ATT&CK technique id, such as T1046' })
    techIn.value = this.#filters.technique ?? ''
    const ruleIn = h('input', { id: 'f-rule', name: 'rule', type: 'search', autocomplete: 'off', spellcheck: 'false', placeholder: 'rule id or name', maxlength: 128, pattern: RULE_PATTERN, title: 'a rule id (a Sigma rule\'s id, such as 3e102cd9-a70d-4a7a-9508-403963092f31) or a Picket rule name' })
    ruleIn.value = this.#filters.rule ?? ''
    const timeSel = h('select', { id: 'f-since', name: 'since' }, ...TIME_OPTIONS.map(([v, l]) => h('option', { value: v }, l)))
    timeSel.value = this.#filters.since ?? ''
    const form = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter findings' },
      h('div', { class: 'field' }, h('label', { for: 'f-status' }, 'Status'), statusSel),
      h('div', { class: 'field' }, h('label', { for: 'f-host' }, 'Host'), hostIn),
      h('div', { class: 'field' }, h('label', { for: 'f-technique' }, 'Technique'), techIn),
      h('div', { class: 'field' }, h('label', { for: 'f-rule' }, 'Rule'), ruleIn),
      h('div', { class: 'field' }, h('label', { for: 'f-since' }, 'Active'), timeSel),
      h('div', { class: 'field actions' },
        h('button', { type: 'submit', class: 'btn' }, 'Apply'),
        h('button', { type: 'button', class: 'btn ghost', id: 'f-reset' }, 'Reset')),
    )
    const apply = (): void => {
      for (const el of [techIn, ruleIn]) if (!el.checkValidity()) { el.reportValidity(); return }
      this.#filters = { status: statusSel.value, host: hostIn.value.trim(), technique: techIn.value.trim().toUpperCase(), rule: ruleIn.value.trim(), since: timeSel.value }
      history.replaceState(null, '', `#/findings${filtersToQuery(this.#filters)}`)
      void this.#load()
    }
    form.addEventListener('submit', (e) => { e.preventDefault(); apply() })
    statusSel.addEventListener('change', apply)
    timeSel.addEventListener('change', apply)
    form.querySelector('#f-reset')?.addEventListener('click', () => {
      statusSel.value = DEFAULT_FILTERS.status ?? ''
      hostIn.value = ''
      techIn.value = ''
      ruleIn.value = ''
      timeSel.value = ''
      apply()
    })

    this.#count = h('p', { class: 'count', 'aria-live': 'off' })
    this.#tbody = h('tbody')
    this.#table = h('table', { class: 'grid findings' },
      h('caption', { class: 'sr-only' }, 'Findings, newest first. Each row opens the finding with Enter or Space.'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Severity'),
        h('th', { scope: 'col' }, 'Technique'),
        h('th', { scope: 'col' }, 'Host'),
        h('th', { scope: 'col' }, 'Sources'),
        h('th', { scope: 'col', class: 'num' }, 'Ports'),
        h('th', { scope: 'col' }, 'First seen (UTC)'),
        h('th', { scope: 'col' }, 'Last seen (UTC)'),
        h('th', { scope: 'col' }, 'Status'))),
      this.#tbody)
    this.#tbody.addEventListener('keydown', (e) => this.#onKey(e))
    this.#more = h('button', { type: 'button', class: 'btn ghost more', hidden: true }, 'Load more')
    this.#more.addEventListener('click', () => { void this.#load(this.#cursor) })
    this.#empty = h('p', { class: 'empty', hidden: true }, 'No findings match these filters. New ones appear here as they are raised.')

    replace(main,
      h('div', { class: 'view-head' },
        h('h1', { id: 'view-title', tabindex: -1 }, 'Findings'),
        this.#count),
      form,
      h('div', { class: 'table-wrap' }, this.#table),
      this.#empty,
      h('div', { class: 'pager' }, this.#more),
    )
    await this.#load()
  }

  async #load (cursor?: string): Promise<void> {
    const seq = ++this.#loadSeq
    this.#table.setAttribute('aria-busy', 'true')
    try {
      const page = await listFindings(this.#filters, cursor)
      if (seq !== this.#loadSeq) return
      clearBanner()
      if (cursor === undefined) {
        this.#rows.clear()
        replace(this.#tbody)
      }
      for (const r of page.items) {
        this.#live.noteSeq(r.changeSeq)
        this.#put(r, 'append')
      }
      this.#cursor = page.nextCursor
      this.#total = page.total
      this.#more.hidden = page.nextCursor === undefined
      this.#refreshCount()
      if (cursor === undefined && this.#focusId !== undefined) {
        const tr = this.#rows.get(this.#focusId)?.tr
        tr?.focus()
      }
    } catch (err) {
      if (seq !== this.#loadSeq) return
      banner(err instanceof ApiError ? `Findings could not be loaded: ${err.message}` : String(err))
    } finally {
      if (seq === this.#loadSeq) this.#table.removeAttribute('aria-busy')
    }
  }

  #refreshCount (): void {
    const shown = this.#rows.size
    replace(this.#count, this.#total === shown ? `${num(shown)} finding${shown === 1 ? '' : 's'}` : `${num(shown)} of ${num(this.#total)} findings`)
    this.#empty.hidden = shown > 0
    this.#table.hidden = shown === 0
  }

  #open = (id: string): void => {
    location.hash = `#/findings/${encodeURIComponent(id)}`
  }

  /** Insert or update one row; `top` for rows the stream announces. */
  #put (r: FindingRow, where: 'append' | 'top'): boolean {
    const cur = this.#rows.get(r.id)
    if (cur !== undefined) {
      if (cur.row.changeSeq > r.changeSeq) return false
      const tr = rowEl(r, this.#open)
      const hadFocus = document.activeElement === cur.tr
      if (where === 'top') tr.classList.add('updated')
      cur.tr.replaceWith(tr)
      this.#rows.set(r.id, { row: r, tr })
      if (hadFocus) tr.focus()
      return false
    }
    const tr = rowEl(r, this.#open)
    this.#rows.set(r.id, { row: r, tr })
    if (where === 'top') {
      tr.classList.add('fresh')
      this.#tbody.insertBefore(tr, this.#tbody.firstChild)
    } else {
      this.#tbody.appendChild(tr)
    }
    return true
  }

  finding (ev: StreamFinding): void {
    const r = ev.finding
    if (!this.#rows.has(r.id) && !matches(r, this.#filters)) return
    if (this.#put(r, 'top')) {
      this.#total++
      this.#refreshCount()
      if (ev.kind === 'created') announce(`New ${r.severity} finding: ${r.title}`)
    }
  }

  reload (): void {
    void this.#load()
  }

  tick (): void {
    for (const el of this.#tbody.querySelectorAll<HTMLElement>('.ago')) {
      el.textContent = ago(Number(el.dataset.ago))
    }
  }

  #onKey (e: KeyboardEvent): void {
    const tr = (e.target as HTMLElement).closest('tr')
    if (tr === null || tr.dataset.id === undefined) return
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault()
      this.#open(tr.dataset.id)
    } else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault()
      const next = (e.key === 'ArrowDown' ? tr.nextElementSibling : tr.previousElementSibling) as HTMLElement | null
      next?.focus()
    }
  }
}
