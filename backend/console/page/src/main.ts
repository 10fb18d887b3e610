import { DetailView } from './detail.js'
import { byId, replace } from './dom.js'
import { FindingsView, filtersFromQuery } from './findings.js'
import { HostsView } from './hosts.js'
import { Live, type LiveState } from './live.js'
import { banner, type View } from './view.js'

// The console page: a hash router over three views (#/findings,
// #/findings/<id>, #/hosts), one live stream feeding whichever is shown,
// and the header (navigation, live state, and which analyst the access token
// names: who triage changes are recorded under).

const main = byId('main')
const liveEl = byId('live')
const liveText = byId('live-text')
const analystEl = byId('analyst')
const analystName = byId('analyst-name')
let view: View | undefined
let lastFindingId: string | undefined
let routeSeq = 0
let routed = 0
let hellos = 0
// The first view loads its lists only once the stream is subscribed (or has
// failed to), so no finding can fall between the list and the stream.
let streamReady!: () => void
const ready = new Promise<void>(resolve => { streamReady = resolve })
window.setTimeout(() => streamReady(), 2500)

const live = new Live({
  hello: (m) => {
    showAnalyst(m.analyst)
    // after a reconnect the lists are fetched again: the stream replays
    // findings, but host counters and closes in between are only in the lists
    if (hellos++ === 0) streamReady()
    else view?.reload?.()
  },
  finding: (ev) => { view?.finding?.(ev) },
  hosts: (ev) => { view?.hosts?.(ev) },
  resync: () => { view?.reload?.() },
  state: (s: LiveState, detail: string) => {
    if (s === 'down') streamReady()
    liveEl.className = `live ${s}`
    liveEl.title = detail
    replace(liveText, s === 'live' ? 'Live' : s === 'connecting' ? 'Connecting…' : 'Offline')
  },
})

function setNav (name: string): void {
  for (const a of document.querySelectorAll<HTMLAnchorElement>('nav.views a')) {
    if (a.dataset.view === name) a.setAttribute('aria-current', 'page')
    else a.removeAttribute('aria-current')
  }
}

async function route (): Promise<void> {
  const hash = location.hash
  // in-page anchors (the skip link) are not routes
  if (hash !== '' && !hash.startsWith('#/')) return
  const seq = ++routeSeq
  await ready
  if (seq !== routeSeq) return
  const [path, query] = hash.slice(2).split('?', 2) as [string, string | undefined]
  const parts = path.split('/').filter(p => p !== '').map(p => { try { return decodeURIComponent(p) } catch { return p } })
  view?.unmount?.()
  let next: View
  if (parts[0] === 'hosts') {
    setNav('hosts')
    next = new HostsView()
  } else if (parts[0] === 'findings' && parts[1] !== undefined) {
    setNav('findings')
    lastFindingId = parts[1]
    next = new DetailView(parts[1], live)
  } else {
    setNav('findings')
    next = new FindingsView(live, filtersFromQuery(new URLSearchParams(query ?? '')), lastFindingId)
  }
  view = next
  const mounted = next.mount(main)
  // after a navigation, land keyboard and screen-reader users on the new
  // view's heading (not on first load: the skip link comes first there)
  if (routed++ > 0) document.getElementById('view-title')?.focus({ preventScroll: false })
  window.scrollTo(0, 0)
  await mounted
  if (seq === routeSeq && lastFindingId !== undefined && next instanceof FindingsView) lastFindingId = undefined
}

function showAnalyst (name: string | null): void {
  analystEl.classList.toggle('read-only', name === null)
  analystEl.title = name !== null
    ? 'Your triage changes are recorded under this name: the analyst your access token names'
    : 'Opened without an access token: you can look, not triage. Open the console with ?access_token=<your token> (picket start prints that URL).'
  replace(analystName, name ?? 'read only')
}

function setupHeader (): void {
  const skip = byId<HTMLAnchorElement>('skip')
  skip.addEventListener('click', (e) => {
    e.preventDefault()
    const target = document.getElementById('view-title') ?? main
    target.focus()
  })
}

window.addEventListener('hashchange', () => { void route() })
window.addEventListener('error', (e) => { banner(`The page hit an error: ${e.message}`) })
setupHeader()
live.start()
void route()
window.setInterval(() => { view?.tick?.() }, 5000)
