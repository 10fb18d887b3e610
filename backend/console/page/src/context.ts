import type { FindingDetail } from '../../types.js'
import { dl, externalLink, h, linkQ, type Child } from './dom.js'
import { num, obj, str, utcMs } from './format.js'

// What a finding knows beyond counts: the process tree of a process or file
// rule, the domain and sampled queries of a DNS rule, and the rule itself.
// The values come from unmapped.picket.group (the first matching record's
// process, command line, parent, user and file) and .values (a DNS
// finding's sample of names). Command lines, paths and names are attacker
// controlled: they go in as text nodes (dom.ts), never as markup or URLs.

/** Levels of parent_process the panel looks for (the agent sends a few). */
const MAX_DEPTH = 8

function picket (d: FindingDetail): Record<string, unknown> {
  return obj(obj(d.finding.unmapped).picket)
}

function group (d: FindingDetail): Record<string, unknown> {
  return obj(picket(d).group)
}

interface ProcNode { pid: string, path: string, name: string, cmd: string, user: string, role: 'ancestor' | 'matched' | 'child' }

/** The process the rule matched: `process` (process_creation) or the actor's (file_event, dns). */
function procPrefix (g: Record<string, unknown>): string | undefined {
  const keys = Object.keys(g)
  if (keys.some(k => k.startsWith('process.'))) return 'process'
  if (keys.some(k => k.startsWith('actor.process.'))) return 'actor.process'
  return undefined
}

function nodeAt (g: Record<string, unknown>, p: string, role: ProcNode['role']): ProcNode | undefined {
  const n: ProcNode = { pid: str(g[`${p}.pid`]), path: str(g[`${p}.file.path`]), name: str(g[`${p}.name`]), cmd: str(g[`${p}.cmd_line`]), user: str(g[`${p}.user.name`]), role }
  return n.pid !== '' || n.path !== '' || n.name !== '' || n.cmd !== '' ? n : undefined
}

/** Ancestors (oldest first), the matched process, then its children, as far as the finding knows them. */
export function processTree (d: FindingDetail): ProcNode[] {
  const g = group(d)
  const p = procPrefix(g)
  if (p === undefined) return []
  const ancestors: ProcNode[] = []
  for (let depth = 1; depth <= MAX_DEPTH; depth++) {
    const n = nodeAt(g, p + '.parent_process'.repeat(depth), 'ancestor')
    if (n !== undefined) ancestors.unshift(n)
  }
  // process.lineage: the ancestors' executable paths, nearest first (OCSF)
  const lineage = Array.isArray(g[`${p}.lineage`]) ? (g[`${p}.lineage`] as unknown[]).map(str).filter(s => s !== '') : []
  for (const path of lineage.slice(ancestors.length)) ancestors.unshift({ pid: '', path, name: '', cmd: '', user: '', role: 'ancestor' })
  // the tree root is the oldest pid the record named; shown when no level above carried more of it
  const root = str(g.process_tree_root)
  const self = nodeAt(g, p, 'matched') ?? { pid: '', path: '', name: '', cmd: '', user: '', role: 'matched' as const }
  if (root !== '' && root !== self.pid && !ancestors.some(a => a.pid === root)) ancestors.unshift({ pid: root, path: '', name: '', cmd: '', user: '', role: 'ancestor' })
  if (self.user === '') self.user = str(g['actor.user.name'])
  const children = Array.isArray(g[`${p}.children`]) ? (g[`${p}.children`] as unknown[]).map(c => obj(c)) : []
  const kids = children.map((c): ProcNode => ({ pid: str(c.pid), path: str(obj(c.file).path), name: str(c.name), cmd: str(c.cmd_line), user: str(obj(c.user).name), role: 'child' }))
  return [...ancestors, self, ...kids]
}

function procItem (n: ProcNode, nearest: boolean): HTMLLIElement {
  const label = n.role === 'matched' ? 'matched' : n.role === 'child' ? 'child' : nearest ? 'parent' : 'ancestor'
  return h('li', { class: `proc proc-${n.role}`, 'data-role': n.role },
    h('div', { class: 'proc-line' },
      h('span', { class: 'tag' }, label),
      ' ',
      h('span', { class: 'mono strong proc-path wrap' }, n.path !== '' ? n.path : n.name !== '' ? n.name : '(executable unknown)'),
      n.pid !== '' ? h('span', { class: 'sub mono' }, `pid ${n.pid}`) : null,
      n.user !== '' ? h('span', { class: 'sub' }, 'user ', h('span', { class: 'mono proc-user' }, n.user)) : null),
    n.cmd !== '' ? h('code', { class: 'cmd mono wrap' }, n.cmd) : null)
}

/** The Process panel of a process, file or DNS finding, or null when the finding names no process. */
export function processPanel (d: FindingDetail): Child[] | null {
  const tree = processTree(d)
  const g = group(d)
  const file = str(g['file.path'])
  if (tree.length === 0 && file === '') return null
  // a DNS correlation knows its process by name alone, and the DNS panel shows it
  if (d.dataSource === 'dns_activity' && tree.length === 1 && tree[0].cmd === '' && tree[0].pid === '') return null
  // nested lists: each process inside its parent's item, as a tree reads
  const kids = tree.filter(n => n.role === 'child')
  let inner: HTMLOListElement | undefined
  let below: ProcNode['role'] | undefined
  for (const n of tree.filter(x => x.role !== 'child').reverse()) {
    const li = procItem(n, below === 'matched')
    below = n.role
    if (n.role === 'matched' && kids.length > 0) li.appendChild(h('ol', { class: 'proc-tree' }, ...kids.map(k => procItem(k, true))))
    if (inner !== undefined) li.appendChild(inner)
    inner = h('ol', { class: 'proc-tree' }, li)
  }
  return [
    h('h2', { id: 'h-process' }, 'Process'),
    h('p', { class: 'sub' }, 'The process of the first matching record and its ancestry, as the record named them.'),
    file !== '' ? dl([['File', h('span', { class: 'mono wrap file-path' }, file)]]) : null,
    inner ?? null,
  ]
}

/** The DNS panel: who asked, the registered domain, and the sample of queried names. */
export function dnsPanel (d: FindingDetail): Child[] | null {
  if (d.dataSource !== 'dns_activity') return null
  const p = picket(d)
  const g = group(d)
  const values = Array.isArray(p.values) ? p.values.map(obj) : []
  const total = Number(p.values_total ?? values.length)
  const single = str(g['query.hostname'])
  const proc = [str(g['actor.process.name']), str(g['actor.process.file.path'])].filter(s => s !== '')
  return [
    h('h2', { id: 'h-dns' }, 'DNS'),
    dl([
      ['Process', proc.length > 0 ? h('span', { class: 'mono wrap dns-process' }, proc.join(' · ')) : '—'],
      ['Registered domain', str(g['query.registered_domain']) !== '' ? h('span', { class: 'mono wrap dns-domain' }, str(g['query.registered_domain'])) : '—'],
      ['Query', single !== '' ? h('span', { class: 'mono wrap' }, single) : null],
    ]),
    values.length === 0
      ? null
      : h('div', { class: 'table-wrap' }, h('table', { class: 'grid compact dns-queries' },
        h('caption', {}, `Sampled queries: ${num(values.length)} of ${num(total)} distinct names`),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col', class: 'num' }, 'Queries'), h('th', { scope: 'col' }, 'First seen (UTC)'))),
        h('tbody', {}, ...values.map(v => h('tr', {},
          h('td', { class: 'mono wrap' }, str(v.value)), h('td', { class: 'num' }, num(Number(v.count))), h('td', {}, utcMs(Number(v.first_seen_time)))))))),
  ]
}

/** A reference as a link when it is an https URL; anything else (javascript:, data:, plain words) stays text. */
function reference (r: string): Child {
  let url: URL
  try { url = new URL(r) } catch { return h('span', { class: 'wrap' }, r) }
  return url.protocol === 'https:' ? externalLink(url, h('span', { class: 'wrap' }, r)) : h('span', { class: 'wrap' }, r)
}

/** The matched rule: its id (the analytic uid), title, level, author and references. */
export function rulePanel (d: FindingDetail): Child[] {
  const analytic = obj(obj(d.finding.finding_info).analytic)
  const rule = obj(picket(d).rule)
  const info = d.ruleInfo
  const id = str(analytic.uid) !== '' ? str(analytic.uid) : d.rule
  const file = str(rule.file)
  const refs = info?.references ?? []
  const fps = info?.falsepositives ?? []
  return [
    h('h2', { id: 'h-rule' }, 'Rule'),
    dl([
      ['Title', h('span', { class: 'rule-title' }, info?.title ?? (str(analytic.name) !== '' ? str(analytic.name) : str(rule.title)))],
      ['Id', [h('span', { class: 'mono rule-id wrap' }, id), ' ', linkQ(['findings'], { status: '', rule: d.rule }, { class: 'sub' }, 'all findings of this rule')]],
      ['Level', info?.level ?? d.severity],
      ['Author', info?.author !== undefined ? h('span', { class: 'rule-author' }, info.author) : '—'],
      ['Status', info?.status ?? null],
      [`References (${refs.length})`, refs.length > 0 ? h('ul', { class: 'plain rule-refs' }, ...refs.map(r => h('li', {}, reference(r)))) : '—'],
      ['False positives', fps.length > 0 ? h('ul', { class: 'plain' }, ...fps.map(f => h('li', {}, f))) : null],
      ['File', file !== '' ? h('span', { class: 'sub mono' }, `${file.split('/').slice(-2).join('/')}:${str(rule.line)}`) : null],
    ]),
  ]
}
