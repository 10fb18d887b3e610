import type { TriageStatus } from '../../../../shared/enums.js'
import type { FindingDetail, StreamFinding } from '../../types.js'
import { ApiError, getFinding, triage } from './api.js'
import { portHistogram, portStats, portTimeline, type PortStat } from './chart.js'
import { dnsPanel, processPanel, rulePanel } from './context.js'
import { dl, externalLink, h, link, replace, type Child } from './dom.js'
import { duration, iso, num, obj, severityClass, statusLabel, str, utc, utcMs } from './format.js'
import { statusBadge } from './findings.js'
import type { Live } from './live.js'
import { announce, banner, clearBanner, type View } from './view.js'
import { formatHostPort } from '../../../../shared/hostport.js'
import { CLASS } from '../../../../shared/ocsf/constants.js'

// One finding: what happened (summary, ports chart, evidence records, the
// OCSF document) and what people did about it (triage actions, history).
// The stream's updates for this finding re-render the data panels; the
// note being typed and the focus stay where they are.

interface Action { to: TriageStatus, label: string, needsNote: boolean, hint: string }

const ACTIONS: Action[] = [
  { to: 'in_progress', label: 'Acknowledge', needsNote: false, hint: 'take it: status becomes In progress' },
  { to: 'resolved', label: 'Resolve', needsNote: true, hint: 'dealt with; say how in the note' },
  { to: 'false_positive', label: 'False positive', needsNote: true, hint: 'not an attack; say why in the note' },
  { to: 'new', label: 'Reopen', needsNote: false, hint: 'back to New' },
]

// the same breakpoint as styles.css: charts are drawn for the width they get
const NARROW = window.matchMedia('(max-width: 760px)')

const CLASS_NAME: Record<number, string> = Object.fromEntries(Object.values(CLASS).map(c => [c.uid, c.name]))

const TECHNIQUE_RE = /^T\d{4}(\.\d{3})?$/
const TACTIC_RE = /^TA\d{4}$/

function endpoint (e: unknown): string {
  const o = obj(e)
  const ip = str(o.ip)
  const port = str(o.port)
  if (ip === '') return port !== '' ? `:${port}` : '—'
  return port === '' ? ip : formatHostPort(ip, Number(port))
}

function timeEl (ms: number, precise = false): HTMLTimeElement {
  return h('time', { datetime: iso(ms) }, precise ? utcMs(ms) : utc(ms))
}

function techniqueLink (uid: string, name: string): Child {
  if (!TECHNIQUE_RE.test(uid)) return uid
  // rule tags name a technique by its id alone; the id twice says nothing more
  return externalLink(new URL(`https://attack.mitre.org/techniques/${uid.replace('.', '/')}/`), `${uid} ${name !== uid ? name : ''}`.trim())
}

function tacticLink (uid: string, name: string): Child {
  if (!TACTIC_RE.test(uid)) return uid
  return externalLink(new URL(`https://attack.mitre.org/tactics/${uid}/`), `${uid} ${name}`.trim())
}

export class DetailView implements View {
  readonly #id: string
  readonly #live: Live
  #d: FindingDetail | undefined
  #refetch: number | undefined
  #loadedAt = 0
  #busy = false
  readonly #el = {
    head: h('div', { class: 'detail-head' }),
    summary: h('section', { class: 'panel summary', 'aria-labelledby': 'h-summary' }),
    triage: h('section', { class: 'panel triage', 'aria-labelledby': 'h-triage' }),
    charts: h('section', { class: 'panel charts wide', 'aria-labelledby': 'h-ports' }),
    process: h('section', { class: 'panel process wide', 'aria-labelledby': 'h-process' }),
    dns: h('section', { class: 'panel dns wide', 'aria-labelledby': 'h-dns' }),
    rule: h('section', { class: 'panel rule', 'aria-labelledby': 'h-rule' }),
    history: h('section', { class: 'panel history', 'aria-labelledby': 'h-history' }),
    evidence: h('section', { class: 'panel evidence wide', 'aria-labelledby': 'h-evidence' }),
    raw: h('section', { class: 'panel raw wide', 'aria-labelledby': 'h-raw' }),
  }

  readonly #note = h('textarea', { id: 'triage-note', name: 'note', rows: 3, maxlength: 2000, placeholder: 'What you found, what you did, or why this is benign', 'aria-describedby': 'triage-help' })
  readonly #triageMsg = h('p', { class: 'form-msg', id: 'triage-msg', role: 'status' })
  readonly #current = h('p', { class: 'current' })
  readonly #buttons = new Map<TriageStatus, HTMLButtonElement>()

  constructor (id: string, live: Live) {
    this.#id = id
    this.#live = live
  }

  readonly #onResize = (): void => { if (this.#d !== undefined) this.#renderCharts(this.#d) }

  async mount (main: HTMLElement): Promise<void> {
    document.title = 'Finding · Picket'
    NARROW.addEventListener('change', this.#onResize)
    replace(main,
      h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, link(['findings'], { class: 'back' }, '← All findings')),
      this.#el.head,
      h('div', { class: 'detail-grid' }, this.#el.summary, this.#el.triage, this.#el.history, this.#el.process, this.#el.dns, this.#el.rule, this.#el.charts, this.#el.evidence, this.#el.raw),
    )
    replace(this.#el.head, h('h1', { id: 'view-title', tabindex: -1 }, 'Loading finding…'))
    this.#buildTriage()
    await this.#load()
  }

  async #load (): Promise<void> {
    try {
      const d = await getFinding(this.#id)
      this.#loadedAt = Date.now()
      clearBanner()
      this.#render(d)
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        replace(this.#el.head, h('h1', { id: 'view-title', tabindex: -1 }, 'No such finding'), h('p', { class: 'message' }, `There is no finding with id ${this.#id}.`))
        for (const k of ['summary', 'triage', 'charts', 'process', 'dns', 'rule', 'history', 'evidence', 'raw'] as const) this.#el[k].hidden = true
        return
      }
      banner(err instanceof ApiError ? `The finding could not be loaded: ${err.message}` : String(err))
    }
  }

  #render (d: FindingDetail): void {
    this.#d = d
    this.#live.noteSeq(d.changeSeq)
    document.title = `${d.technique} ${d.hostname ?? d.hostId ?? ''} · Picket`
    const title = h('h1', { id: 'view-title', tabindex: -1 }, d.title)
    const hadFocus = document.activeElement?.id === 'view-title'
    replace(this.#el.head,
      title,
      h('div', { class: 'badges' },
        h('span', { class: severityClass(d.severityId) }, d.severity),
        statusBadge(d.status, d.state),
        h('span', { class: 'tag mono' }, d.technique),
        d.state === 'closed' ? h('span', { class: 'tag' }, d.scan ? 'scan ended' : 'activity ended') : null),
      h('p', { class: 'message' }, d.message))
    if (hadFocus) title.focus()
    this.#renderSummary(d)
    this.#renderTriageState(d)
    this.#renderCharts(d)
    this.#renderContext(d)
    this.#renderHistory(d)
    this.#renderEvidence(d)
    this.#renderRaw(d)
  }

  #renderSummary (d: FindingDetail): void {
    const f = d.finding
    const picket = obj(obj(f.unmapped).picket)
    const rule = obj(picket.rule)
    const cond = obj(picket.condition)
    const hosts: Child[] = d.hostId !== null
      ? [h('span', { class: 'strong' }, d.hostname ?? d.hostId), d.hostname !== null && d.hostname !== d.hostId ? h('span', { class: 'sub mono' }, d.hostId) : null]
      : [`${num(d.hostsCount)} hosts: `, h('span', { class: 'mono' }, d.hosts.slice(0, 50).join(', ')), d.hostsCount > 50 ? ` +${d.hostsCount - 50} more` : null]
    const sources = h('ul', { class: 'plain mono' }, ...d.sources.slice(0, 50).map(ip => h('li', {}, ip)))
    // a scan has a scanned host, sources and ports; a process, file or DNS finding has a host and matching events
    replace(this.#el.summary,
      h('h2', { id: 'h-summary' }, 'Summary'),
      dl([
        [d.hostId !== null ? (d.scan ? 'Scanned host' : 'Host') : 'Hosts', hosts],
        [`Source${d.sourcesCount === 1 ? '' : 's'} (${num(d.sourcesCount)})`, d.scan || d.sourcesCount > 0 ? [sources, d.sourcesCount > d.sources.length ? h('span', { class: 'sub' }, `+${num(d.sourcesCount - d.sources.length)} more`) : null] : null],
        ['Ports probed', d.scan ? num(d.portCount) : null],
        [d.scan ? 'Records' : 'Matching events', num(d.records)],
        ['First seen', timeEl(d.firstSeen, true)],
        ['Last seen', timeEl(d.lastSeen, true)],
        ['Duration', duration(d.lastSeen - d.firstSeen)],
        ['Technique', techniqueLink(d.technique, d.techniqueName)],
        ['Tactic', tacticLink(d.tactic, d.tacticName)],
        ['Rule', [h('span', { class: 'mono' }, d.rule), str(rule.file) !== '' ? h('span', { class: 'sub mono' }, `${str(rule.file).split('/').slice(-2).join('/')}:${str(rule.line)}`) : null]],
        ['Condition', str(cond.field) !== '' ? `${str(cond.field)} ≥ ${str(cond.gte)} distinct within ${duration(Number(cond.timespan_ms))}` : str(rule.type) === 'standalone' ? 'each matching event' : '—'],
        ['Raised', timeEl(d.createdAt)],
        ['Finding id', h('span', { class: 'mono' }, d.id)],
      ]))
  }

  #buildTriage (): void {
    const buttons = h('div', { class: 'actions', role: 'group', 'aria-label': 'Triage actions' })
    for (const a of ACTIONS) {
      const b = h('button', { type: 'button', class: `btn act-${a.to}`, title: a.hint, 'data-to': a.to }, a.label)
      b.addEventListener('click', () => { void this.#triage(a) })
      this.#buttons.set(a.to, b)
      buttons.appendChild(b)
    }
    replace(this.#el.triage,
      h('h2', { id: 'h-triage' }, 'Triage'),
      this.#current,
      h('label', { for: 'triage-note' }, 'Note'),
      this.#note,
      h('p', { id: 'triage-help', class: 'sub' }, 'Resolve and False positive need a note. The note, your name and the time go into the history.'),
      buttons,
      this.#triageMsg)
  }

  #renderTriageState (d: FindingDetail): void {
    replace(this.#current, 'Status: ', statusBadge(d.status), d.state === 'open' ? h('span', { class: 'sub' }, ` The ${d.scan ? 'scan' : 'activity'} is still going on; the finding keeps updating.`) : null)
    for (const [to, b] of this.#buttons) {
      const reopen = to === 'new'
      b.hidden = reopen ? d.status === 'new' : false
      b.disabled = this.#busy || d.status === to
    }
  }

  async #triage (a: Action): Promise<void> {
    if (this.#d === undefined || this.#busy) return
    const note = this.#note.value.trim()
    if (a.needsNote && note === '') {
      this.#note.setAttribute('aria-invalid', 'true')
      replace(this.#triageMsg, `${a.label} needs a note: say ${a.to === 'resolved' ? 'what was done' : 'why this is not an attack'}.`)
      this.#triageMsg.className = 'form-msg error'
      this.#note.focus()
      return
    }
    this.#note.removeAttribute('aria-invalid')
    this.#busy = true
    this.#renderTriageState(this.#d)
    replace(this.#triageMsg, 'Saving…')
    this.#triageMsg.className = 'form-msg'
    try {
      const d = await triage(this.#d.id, a.to, note)
      this.#note.value = ''
      this.#busy = false
      this.#render(d)
      const who = d.history[d.history.length - 1]?.actor ?? 'you'
      replace(this.#triageMsg, `Marked ${statusLabel(d.status)} by ${who}.`)
      this.#triageMsg.className = 'form-msg ok'
      announce(`Finding marked ${statusLabel(d.status)}`)
    } catch (err) {
      this.#busy = false
      this.#renderTriageState(this.#d)
      const msg = err instanceof ApiError ? err.fields.length > 0 ? err.fields.map(f => `${f.field} ${f.message}`).join('; ') : err.message : String(err)
      replace(this.#triageMsg, `Not saved: ${msg}`)
      this.#triageMsg.className = 'form-msg error'
    }
  }

  #renderContext (d: FindingDetail): void {
    for (const [el, parts] of [[this.#el.process, processPanel(d)], [this.#el.dns, dnsPanel(d)], [this.#el.rule, rulePanel(d)]] as const) {
      el.hidden = parts === null
      replace(el, ...(parts ?? []))
    }
  }

  #renderCharts (d: FindingDetail): void {
    // ports are what a scan counts; other classes have none to chart
    this.#el.charts.hidden = !d.scan
    if (!d.scan) { replace(this.#el.charts); return }
    const stats = portStats(d.finding)
    const parts: Child[] = [h('h2', { id: 'h-ports' }, `Ports probed (${num(d.portCount)})`)]
    if (stats.length === 0) {
      parts.push(h('p', { class: 'empty' }, 'This finding carries no per-port statistics.'))
    } else {
      const width = NARROW.matches ? 400 : 720
      parts.push(h('div', { class: 'chart-pair' },
        h('figure', {}, portHistogram(stats, width), h('figcaption', {}, 'Probes per port range')),
        h('figure', {}, portTimeline(stats, width), h('figcaption', {}, 'When each port was first probed'))))
      parts.push(this.#portTable(stats, d.portCount))
    }
    const open = this.#el.charts.querySelector('details')?.open === true
    replace(this.#el.charts, ...parts)
    const details = this.#el.charts.querySelector('details')
    if (details !== null) details.open = open
  }

  #portTable (stats: PortStat[], total: number): HTMLDetailsElement {
    const top = [...stats].sort((a, b) => b.count - a.count || a.port - b.port).slice(0, 200)
    return h('details', { class: 'ports-table' },
      h('summary', {}, `Ports as a table${stats.length < total ? ` (the finding lists ${num(stats.length)} of ${num(total)})` : ''}`),
      h('div', { class: 'table-wrap' }, h('table', { class: 'grid compact' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', class: 'num' }, 'Port'), h('th', { scope: 'col', class: 'num' }, 'Probes'), h('th', { scope: 'col' }, 'First seen (UTC)'), h('th', { scope: 'col' }, 'Last seen (UTC)'))),
        h('tbody', {}, ...top.map(p => h('tr', {},
          h('td', { class: 'num mono' }, p.port), h('td', { class: 'num' }, num(p.count)), h('td', {}, utcMs(p.first)), h('td', {}, utcMs(p.last))))))))
  }

  #renderHistory (d: FindingDetail): void {
    const items = [...d.history].reverse().map(e => {
      const change: Child[] = e.from !== null && e.from !== e.to
        ? [statusBadge(e.from), h('span', { class: 'arrow' }, ' → '), statusBadge(e.to)]
        : [statusBadge(e.to), e.from === e.to ? h('span', { class: 'sub' }, ' (note)') : null]
      return h('li', {},
        h('div', { class: 'hist-line' },
          ...change,
          h('span', { class: 'who' }, ' by ', h('strong', {}, e.actor)),
          h('span', { class: 'when' }, timeEl(e.at))),
        e.note !== '' ? h('p', { class: 'note' }, e.note) : null)
    })
    replace(this.#el.history, h('h2', { id: 'h-history' }, 'Status history'), h('ol', { class: 'history-list', reversed: true }, ...items))
  }

  #renderEvidence (d: FindingDetail): void {
    const evs = Array.isArray(d.finding.evidences) ? d.finding.evidences as unknown[] : []
    const rows = evs.map((raw, i) => {
      const e = obj(raw)
      const data = obj(e.data)
      const conn = obj(e.connection_info)
      const dev = obj(e.device)
      const host = str(dev.hostname) !== '' ? str(dev.hostname) : str(dev.uid)
      return h('tr', {},
        h('td', { 'data-label': '#', class: 'num' }, i + 1),
        h('td', { 'data-label': 'Role' }, str(e.name)),
        h('td', { 'data-label': 'Time (UTC)', class: 'time' }, utcMs(Number(data.time))),
        h('td', { 'data-label': 'Activity' }, str(data.activity_name) !== '' ? str(data.activity_name) : `${CLASS_NAME[Number(data.class_uid)] ?? `class ${str(data.class_uid)}`}, activity_id ${str(data.activity_id)}`),
        h('td', { 'data-label': 'Protocol' }, [str(conn.protocol_name), str(conn.direction).toLowerCase()].filter(x => x !== '').join(' · ')),
        h('td', { 'data-label': 'Source', class: 'mono wrap' }, endpoint(e.src_endpoint)),
        h('td', { 'data-label': 'Destination', class: 'mono wrap' }, endpoint(e.dst_endpoint)),
        h('td', { 'data-label': 'Host', class: 'wrap' }, host))
    })
    replace(this.#el.evidence,
      h('h2', { id: 'h-evidence' }, `Evidence (${evs.length} record${evs.length === 1 ? '' : 's'})`),
      h('p', { class: 'sub' }, 'The first records of the incident and the latest ones, as the detection plane kept them.'),
      evs.length === 0
        ? h('p', { class: 'empty' }, 'No evidence records.')
        : h('div', { class: 'table-wrap' }, h('table', { class: 'grid compact evidence-table' },
          h('thead', {}, h('tr', {}, ...['#', 'Role', 'Time (UTC)', 'Activity', 'Protocol', 'Source', 'Destination', 'Host'].map(c => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, ...rows))))
  }

  #renderRaw (d: FindingDetail): void {
    const open = this.#el.raw.querySelector('details')?.open === true
    replace(this.#el.raw,
      h('h2', { id: 'h-raw', class: 'sr-only' }, 'OCSF document'),
      h('details', { open }, h('summary', {}, 'OCSF detection_finding (JSON)'), h('pre', { class: 'json', tabindex: 0 }, JSON.stringify(d.finding, null, 2))))
  }

  finding (ev: StreamFinding): void {
    if (ev.finding.id !== this.#id || this.#busy) return
    if (this.#d !== undefined && ev.finding.changeSeq <= this.#d.changeSeq) return
    if (this.#refetch !== undefined) return
    // an active scan updates its finding several times a second; a detail
    // page that redraws at that rate cannot be read
    const wait = Math.max(300, 2000 - (Date.now() - this.#loadedAt))
    this.#refetch = window.setTimeout(() => { this.#refetch = undefined; void this.#load() }, wait)
  }

  reload (): void {
    void this.#load()
  }

  unmount (): void {
    NARROW.removeEventListener('change', this.#onResize)
    if (this.#refetch !== undefined) window.clearTimeout(this.#refetch)
  }
}
