import { DROP_CAUSES } from '../../../../shared/enums.js'
import type { HostView, StreamHosts } from '../../types.js'
import { ApiError, listHosts } from './api.js'
import { h, linkQ, replace } from './dom.js'
import { ago, bytes, DROP_LABEL, iso, now, num, utc } from './format.js'
import { banner, clearBanner, type View } from './view.js'

// Agent health: is every host reporting, how fast, and is anything being
// lost (drops by cause: kernel ring full, recursion, slab starvation, spool
// eviction, decode errors, batches the collector refused). A host with no
// batch for longer than the backend's stale threshold is flagged; the flag
// is re-evaluated here every few seconds against the server's clock, since
// a silent host sends no event to say it went silent. The list comes in
// pages (GET /api/hosts is paged by host id); the view follows the cursor up
// to MAX_HOSTS rows, and past that its tiles count from the server's totals.

const MAX_HOSTS = 5000

export class HostsView implements View {
  readonly #hosts = new Map<string, HostView>()
  #staleAfterMs = 120_000
  /** the server's counts, when the view holds only the first MAX_HOSTS hosts */
  #partial: { total: number, stale: number } | undefined
  #tbody!: HTMLTableSectionElement
  #tiles!: HTMLElement
  #empty!: HTMLElement
  #table!: HTMLTableElement

  async mount (main: HTMLElement): Promise<void> {
    document.title = 'Hosts · Picket'
    this.#tiles = h('div', { class: 'tiles', role: 'group', 'aria-label': 'Fleet health' })
    this.#tbody = h('tbody')
    this.#table = h('table', { class: 'grid hosts' },
      h('caption', { class: 'sr-only' }, 'Hosts and the health of their agents; stale hosts first.'),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, 'Health'),
        h('th', { scope: 'col' }, 'Host'),
        h('th', { scope: 'col' }, 'Last seen (UTC)'),
        h('th', { scope: 'col', class: 'num' }, 'Records/s'),
        h('th', { scope: 'col', class: 'num' }, 'Records'),
        h('th', { scope: 'col' }, 'Drops by cause'),
        h('th', { scope: 'col', class: 'num' }, 'Refused batches'),
        h('th', { scope: 'col' }, 'Agent'))),
      this.#tbody)
    this.#empty = h('p', { class: 'empty', hidden: true }, 'No agent has reported yet. Hosts appear here when their first batch arrives.')
    replace(main,
      h('div', { class: 'view-head' }, h('h1', { id: 'view-title', tabindex: -1 }, 'Hosts')),
      this.#tiles,
      h('div', { class: 'table-wrap' }, this.#table),
      this.#empty)
    await this.#load()
  }

  async #load (): Promise<void> {
    try {
      let list = await listHosts()
      const items = [...list.items]
      while (list.nextCursor !== undefined && items.length < MAX_HOSTS) {
        list = await listHosts(list.nextCursor)
        items.push(...list.items)
      }
      clearBanner()
      this.#staleAfterMs = list.staleAfterMs
      this.#partial = items.length < list.total ? { total: list.total, stale: list.stale } : undefined
      this.#hosts.clear()
      for (const x of items) this.#hosts.set(x.hostId, x)
      this.#render()
    } catch (err) {
      banner(err instanceof ApiError ? `Hosts could not be loaded: ${err.message}` : String(err))
    }
  }

  #isStale (x: HostView): boolean {
    return now() - x.lastSeen > this.#staleAfterMs
  }

  #render (): void {
    const all = [...this.#hosts.values()]
    const stale = all.filter(x => this.#isStale(x))
    const drops = all.reduce((a, x) => a + x.dropsTotal, 0)
    const rate = all.filter(x => !this.#isStale(x)).reduce((a, x) => a + x.recordsPerSec, 0)
    const tile = (label: string, value: string, cls = ''): HTMLElement => h('div', { class: `tile ${cls}` }, h('span', { class: 'tile-value' }, value), h('span', { class: 'tile-label' }, label))
    const p = this.#partial
    const total = p?.total ?? all.length
    const staleN = p?.stale ?? stale.length
    replace(this.#tiles,
      tile(p !== undefined ? `hosts (the first ${num(all.length)} listed)` : 'hosts', num(total)),
      tile('reporting', num(total - staleN), staleN === 0 && total > 0 ? 'good' : ''),
      tile(`stale (no batch for ${Math.round(this.#staleAfterMs / 1000)} s)`, num(staleN), staleN > 0 ? 'warn' : ''),
      tile('records/s', num(rate)),
      tile('records dropped', num(drops), drops > 0 ? 'bad' : 'good'))
    all.sort((a, b) => Number(this.#isStale(b)) - Number(this.#isStale(a)) || b.dropsTotal - a.dropsTotal || a.hostId.localeCompare(b.hostId))
    // the table is rebuilt on every update: keep a keyboard user's place in it
    const focused = document.activeElement instanceof HTMLElement && this.#tbody.contains(document.activeElement)
      ? document.activeElement.closest('tr')?.dataset.host
      : undefined
    replace(this.#tbody, ...all.map(x => this.#row(x)))
    if (focused !== undefined) {
      for (const tr of this.#tbody.querySelectorAll<HTMLTableRowElement>('tr')) {
        if (tr.dataset.host === focused) { tr.querySelector('a')?.focus(); break }
      }
    }
    this.#empty.hidden = all.length > 0
    this.#table.hidden = all.length === 0
  }

  #row (x: HostView): HTMLTableRowElement {
    const stale = this.#isStale(x)
    const causes = DROP_CAUSES.filter(c => x.drops[c] > 0)
    const name = x.hostname !== '' ? x.hostname : x.hostId
    return h('tr', { class: stale ? 'stale' : '', 'data-host': x.hostId },
      h('td', { 'data-label': 'Health' }, stale
        ? h('span', { class: 'health warn' }, 'Stale')
        : x.dropsTotal > 0 ? h('span', { class: 'health bad' }, 'Dropping') : h('span', { class: 'health ok' }, 'OK')),
      h('td', { 'data-label': 'Host', class: 'wrap' },
        linkQ(['findings'], { host: x.hostId, status: '' }, { class: 'strong host-link', title: `findings on ${x.hostId}` }, name),
        name !== x.hostId ? h('span', { class: 'sub mono' }, x.hostId) : null),
      h('td', { 'data-label': 'Last seen', class: 'time' }, h('time', { datetime: iso(x.lastSeen) }, utc(x.lastSeen)), h('span', { class: 'sub ago', 'data-ago': x.lastSeen }, ago(x.lastSeen))),
      h('td', { 'data-label': 'Records/s', class: 'num' }, stale ? '0' : num(x.recordsPerSec)),
      h('td', { 'data-label': 'Records', class: 'num' }, num(x.records), h('span', { class: 'sub' }, bytes(x.bytes))),
      h('td', { 'data-label': 'Drops' }, causes.length === 0
        ? h('span', { class: 'sub' }, 'none')
        : h('ul', { class: 'plain drops' }, ...causes.map(c => h('li', {}, h('span', { class: 'drop-n' }, num(x.drops[c])), ' ', DROP_LABEL[c])))),
      h('td', { 'data-label': 'Refused batches', class: 'num' }, num(x.refusedBatches)),
      h('td', { 'data-label': 'Agent', class: 'wrap' }, x.agentVersion !== '' ? x.agentVersion : '—'))
  }

  hosts (ev: StreamHosts): void {
    // a partial view keeps to the hosts it listed; a full one takes in new ones
    for (const x of ev.items) if (this.#partial === undefined || this.#hosts.has(x.hostId)) this.#hosts.set(x.hostId, x)
    this.#render()
  }

  reload (): void {
    void this.#load()
  }

  tick (): void {
    this.#render()
  }
}
