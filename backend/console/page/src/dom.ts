// The only way this page builds DOM. Every string from a finding is
// attacker-controlled (hostnames, process names, anything a record carries),
// so text goes in as text nodes and attributes go in through setAttribute,
// never through an HTML parser. Event-handler, style and URL-bearing
// attributes are refused outright; links are built by link() from route
// parts this page controls. The server's CSP (Trusted Types, no inline
// script) backs this up: even a mistake here cannot run script.

export type Child = Node | string | number | null | undefined | false
export type Attrs = Record<string, string | number | boolean | null | undefined>

const FORBIDDEN_ATTR = /^(on|style$|srcdoc$|src$|href$|action$|formaction$|xlink:href$|data$)/i

function setAttrs (el: Element, attrs: Attrs | undefined): void {
  if (attrs === undefined) return
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (FORBIDDEN_ATTR.test(k)) throw new Error(`dom: attribute ${k} is not settable through h()`)
    el.setAttribute(k, v === true ? '' : String(v))
  }
}

export function append (el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c)
  }
}

export function h<K extends keyof HTMLElementTagNameMap> (tag: K, attrs?: Attrs, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  setAttrs(el, attrs)
  append(el, children)
  return el
}

const SVG_NS = 'http://www.w3.org/2000/svg'

export function s<K extends keyof SVGElementTagNameMap> (tag: K, attrs?: Attrs, ...children: Child[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag)
  setAttrs(el, attrs)
  append(el, children)
  return el
}

/** A link to one of this page's own views: `#/` + route parts, each URI-encoded. */
export function link (parts: string[], attrs: Attrs, ...children: Child[]): HTMLAnchorElement {
  return linkQ(parts, {}, attrs, ...children)
}

/** link() with a query after the route (#/findings?host=...), each value URI-encoded. */
export function linkQ (parts: string[], query: Record<string, string>, attrs: Attrs, ...children: Child[]): HTMLAnchorElement {
  const a = h('a', attrs, ...children)
  const q = new URLSearchParams(query).toString()
  a.setAttribute('href', '#/' + parts.map(encodeURIComponent).join('/') + (q !== '' ? `?${q}` : ''))
  return a
}

/** A link off the page (MITRE ATT&CK), built from a checked id, never from free text. */
export function externalLink (url: URL, ...children: Child[]): HTMLAnchorElement {
  if (url.protocol !== 'https:') throw new Error('dom: external links must be https')
  const a = h('a', { rel: 'noopener noreferrer', target: '_blank', class: 'ext' }, ...children)
  a.setAttribute('href', url.href)
  return a
}

export function clear (el: Element): void {
  while (el.firstChild !== null) el.removeChild(el.firstChild)
}

export function replace (el: Element, ...children: Child[]): void {
  clear(el)
  append(el, children)
}

export function byId<T extends HTMLElement = HTMLElement> (id: string): T {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`page: #${id} is missing from index.html`)
  return el as T
}

/** Facts as a definition list; a pair whose value is null is left out. */
export function dl (pairs: Array<[string, Child | Child[]]>): HTMLDListElement {
  const el = h('dl', { class: 'facts' })
  for (const [k, v] of pairs) {
    if (v === null) continue
    el.appendChild(h('dt', {}, k))
    el.appendChild(h('dd', {}, ...(Array.isArray(v) ? v : [v])))
  }
  return el
}
