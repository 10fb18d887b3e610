import { cidrContains, parseCidr, parseIp, type Cidr } from '../ip.js'
import { T_ABSENT, T_FALSE, T_NULL, T_NUM, T_STR, T_TRUE, type Cols } from '../projector.js'
import { allOf, anyOf, type Pred } from './condition.js'
import { expandValue, TRANSFORMS } from './transforms.js'
import { mapField, type Taxonomy } from './taxonomy.js'

// Sigma selections compiled into predicates over projected columns.
//   field: value            equality; strings are case-insensitive, * and ? are wildcards
//   field: [a, b]           any of the values (|all: every value)
//   field|contains / |startswith / |endswith / |re / |cidr / |gt / |gte / |lt / |lte / |exists / |cased
//   field|base64 / |base64offset / |windash   value transforms (transforms.ts), before contains & co.
//   Image, CommandLine, ...  Sigma taxonomy names, mapped per category (taxonomy.ts)
//   - {a: 1}  - {b: 2}      a list of maps is any of the maps

export type ColPred = Pred<Cols>

export class SelectionError extends Error {
  /** key path inside the selection the problem is about */
  readonly at: Array<string | number>
  constructor (message: string, at: Array<string | number>) {
    super(message)
    this.at = at
  }
}

const FIELD_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/
const SUPPORTED = new Set(['contains', 'startswith', 'endswith', 'all', 'cidr', 're', 'i', 'm', 's', 'gt', 'gte', 'lt', 'lte', 'exists', 'cased', ...TRANSFORMS])

export function isFieldPath (s: string): boolean {
  return FIELD_RE.test(s)
}

/** Every field path a selection reads (for the projector). */
export function selectionFields (sel: unknown, tax?: Taxonomy): string[] {
  const maps = Array.isArray(sel) ? sel : [sel]
  const out: string[] = []
  for (const m of maps) {
    if (m !== null && typeof m === 'object' && !Array.isArray(m)) {
      for (const key of Object.keys(m)) {
        const mapped = mapField(key.split('|')[0], tax)
        if ('paths' in mapped) out.push(...mapped.paths.filter(isFieldPath))
      }
    }
  }
  return out
}

const TRUE: ColPred = () => true

/** Compile one named selection. `slotOf` maps a field path to its column slot. */
export function compileSelection (sel: unknown, slotOf: (field: string) => number, at: Array<string | number>, tax?: Taxonomy): ColPred {
  if (Array.isArray(sel)) {
    if (sel.length === 0) throw new SelectionError('a selection list must not be empty', at)
    if (sel.every(x => x !== null && typeof x === 'object' && !Array.isArray(x))) {
      return anyOf(sel.map((m, i) => compileMap(m as Record<string, unknown>, slotOf, [...at, i], tax)))
    }
    throw new SelectionError('keyword selections (a bare list of strings) are not supported; match a named OCSF field instead, e.g. status_detail|contains: ...', at)
  }
  if (sel === null || typeof sel !== 'object') {
    throw new SelectionError('a selection must be a mapping of OCSF field paths to values, or a list of such mappings', at)
  }
  return compileMap(sel as Record<string, unknown>, slotOf, at, tax)
}

function compileMap (m: Record<string, unknown>, slotOf: (field: string) => number, at: Array<string | number>, tax: Taxonomy | undefined): ColPred {
  const keys = Object.keys(m)
  if (keys.length === 0) return TRUE
  return allOf(keys.map(key => compileField(key, m[key], slotOf, [...at, key], tax)))
}

function compileField (key: string, raw: unknown, slotOf: (field: string) => number, at: Array<string | number>, tax: Taxonomy | undefined): ColPred {
  const [name, ...mods] = key.split('|')
  const mapped = mapField(name, tax)
  if ('problem' in mapped) throw new SelectionError(mapped.problem, at)
  for (const field of mapped.paths) {
    if (!isFieldPath(field)) {
      throw new SelectionError(`'${field}' is not an OCSF field path (expected names joined by dots, e.g. dst_endpoint.port)`, at)
    }
  }
  for (const mod of mods) {
    if (!SUPPORTED.has(mod)) {
      throw new SelectionError(`modifier '${mod}' is not supported (supported: ${[...SUPPORTED].join(', ')})`, at)
    }
  }
  let values = Array.isArray(raw) ? raw : [raw]
  if (values.length === 0) throw new SelectionError(`${key} has an empty list of values`, at)
  const vmap = mapped.values
  if (vmap !== undefined) {
    values = values.map(v => {
      const k = String(v).toLowerCase()
      if (!Object.hasOwn(vmap, k)) throw new SelectionError(`${name} takes one of ${Object.keys(vmap).join(', ')}, got ${JSON.stringify(v)}`, at)
      return vmap[k]
    })
  }
  // fallbacks: the first path the record has decides
  const preds = mapped.paths.map(f => fieldPred(slotOf(f), values, Array.isArray(raw), key, mods, at))
  const slots = mapped.paths.map(f => slotOf(f))
  if (preds.length === 1) return preds[0]
  return (c, b) => {
    for (let i = 0; i < slots.length - 1; i++) if (c.typ[b + slots[i]] !== T_ABSENT) return preds[i](c, b)
    return preds[preds.length - 1](c, b)
  }
}

function fieldPred (slot: number, values: unknown[], listed: boolean, key: string, mods: string[], at: Array<string | number>): ColPred {
  const has = (m: string): boolean => mods.includes(m)
  const one = (v: unknown, i: number): ColPred => {
    const vat = listed ? [...at, i] : at
    try {
      return anyOf(expandValue(v, mods).map(x => compileValue(x, slot, mods, vat)))
    } catch (err) {
      throw err instanceof SelectionError ? err : new SelectionError((err as Error).message, vat)
    }
  }
  if (has('exists')) {
    if (values.length !== 1 || typeof values[0] !== 'boolean') throw new SelectionError('|exists takes true or false', at)
    const want = values[0]
    return (c, b) => (c.typ[b + slot] !== T_ABSENT) === want
  }
  const preds = values.map(one)
  return has('all') ? allOf(preds) : anyOf(preds)
}

function compileValue (v: unknown, slot: number, mods: string[], at: Array<string | number>): ColPred {
  const has = (m: string): boolean => mods.includes(m)
  for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
    if (!has(op)) continue
    if (typeof v !== 'number') throw new SelectionError(`|${op} needs a number, got ${JSON.stringify(v)}`, at)
    switch (op) {
      case 'gt': return (c, b) => c.typ[b + slot] === T_NUM && c.num[b + slot] > v
      case 'gte': return (c, b) => c.typ[b + slot] === T_NUM && c.num[b + slot] >= v
      case 'lt': return (c, b) => c.typ[b + slot] === T_NUM && c.num[b + slot] < v
      case 'lte': return (c, b) => c.typ[b + slot] === T_NUM && c.num[b + slot] <= v
    }
  }
  if (has('cidr')) {
    if (typeof v !== 'string') throw new SelectionError(`|cidr needs an address or network such as 10.0.0.0/8, got ${JSON.stringify(v)}`, at)
    const cidr = parseCidr(v)
    if (cidr === undefined) throw new SelectionError(`'${v}' is not an IPv4 or IPv6 network (examples: 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)`, at)
    return cidrPred(cidr, slot)
  }
  if (has('re')) {
    if (typeof v !== 'string') throw new SelectionError(`|re needs a regular expression string, got ${JSON.stringify(v)}`, at)
    let re: RegExp
    // Sigma's regexes are PCRE-flavoured: a leading (?i) / (?s) / (?m) is a flag, not syntax JavaScript knows
    const inline = /^\(\?([ims]+)\)/.exec(v)
    const flags = new Set([...mods.filter(m => m === 'i' || m === 'm' || m === 's'), ...(inline?.[1] ?? '')])
    try {
      re = new RegExp(inline !== null ? v.slice(inline[0].length) : v, [...flags].join(''))
    } catch (err) {
      throw new SelectionError(`'${v}' is not a valid regular expression: ${(err as Error).message}`, at)
    }
    return (c, b) => c.typ[b + slot] === T_STR && re.test(c.str[b + slot] as string)
  }
  if (v === null) return (c, b) => c.typ[b + slot] === T_ABSENT || c.typ[b + slot] === T_NULL
  if (typeof v === 'boolean') { const t = v ? T_TRUE : T_FALSE; return (c, b) => c.typ[b + slot] === t }
  if (typeof v === 'number') {
    const text = String(v)
    return (c, b) => {
      const t = c.typ[b + slot]
      return t === T_NUM ? c.num[b + slot] === v : t === T_STR && c.str[b + slot] === text
    }
  }
  if (typeof v !== 'string') throw new SelectionError(`unsupported value ${JSON.stringify(v)}: use a string, number, boolean or null`, at)
  let pattern = v
  if (has('contains')) pattern = '*' + pattern + '*'
  else if (has('startswith')) pattern = pattern + '*'
  else if (has('endswith')) pattern = '*' + pattern
  return stringPred(pattern, slot, has('cased') || has('base64') || has('base64offset'))
}

// One lower-cased copy of a row's string per slot, shared by every rule that
// reads the slot: the corpus has a hundred rules on process.cmd_line.
const lowSrc: Array<string | undefined> = []
const lowVal: string[] = []

function lowerCell (c: Cols, i: number, slot: number): string {
  const s = c.str[i] as string
  if (lowSrc[slot] !== s) { lowSrc[slot] = s; lowVal[slot] = s.toLowerCase() }
  return lowVal[slot]
}

/** contains (*x*), startswith (x*), endswith (*x) of a pre-lower-cased literal. */
function affixPred (low: string, lead: boolean, trail: boolean, slot: number): ColPred {
  if (lead && trail) return (c, b) => c.typ[b + slot] === T_STR && lowerCell(c, b + slot, slot).includes(low)
  if (trail) return (c, b) => c.typ[b + slot] === T_STR && lowerCell(c, b + slot, slot).startsWith(low)
  return (c, b) => c.typ[b + slot] === T_STR && lowerCell(c, b + slot, slot).endsWith(low)
}

function cidrPred (cidr: Cidr, slot: number): ColPred {
  const cache = new Map<string, boolean>()
  return (c, b) => {
    if (c.typ[b + slot] !== T_STR) return false
    const s = c.str[b + slot] as string
    let hit = cache.get(s)
    if (hit === undefined) {
      const ip = parseIp(s)
      hit = ip !== undefined && cidrContains(cidr, ip)
      if (cache.size >= 8192) cache.clear()
      cache.set(s, hit)
    }
    return hit
  }
}

/** Sigma string semantics: `*` and `?` wildcards (`\*`, `\?`, `\\` escape them); case-insensitive unless cased. */
function stringPred (pattern: string, slot: number, cased: boolean): ColPred {
  let literal = ''
  let re = ''
  let wild = false
  // the wildcards, in order ('*' or '?'), and whether the pattern opens and ends with a *
  let wilds = ''
  let lead = false
  let trail = false
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i]
    trail = false
    if (ch === '\\' && (pattern[i + 1] === '*' || pattern[i + 1] === '?' || pattern[i + 1] === '\\')) {
      literal += pattern[i + 1]
      re += '\\' + pattern[i + 1]
      i++
    } else if (ch === '*' || ch === '?') {
      wild = true
      wilds += ch
      if (ch === '*') { lead ||= i === 0; trail = true }
      re += ch === '*' ? '[\\s\\S]*' : '[\\s\\S]'
    } else {
      literal += ch
      re += ch.replace(/[.+?^${}()|[\]\\*-]/g, '\\$&')
    }
  }
  const ends = (lead ? 1 : 0) + (trail ? 1 : 0)
  if (wild && !cased && wilds.length === ends && literal.length > 0) return affixPred(literal.toLowerCase(), lead, trail, slot)
  if (wild) {
    // contains / startswith / endswith: a leading or trailing * needs no anchor (and no backtracking)
    const ANY = '[\\s\\S]*'
    let body = '^' + re + '$'
    while (body.startsWith('^' + ANY)) body = body.slice(1 + ANY.length)
    while (body.endsWith(ANY + '$')) body = body.slice(0, -ANY.length - 1)
    const rx = new RegExp(body, cased ? '' : 'i')
    return (c, b) => c.typ[b + slot] === T_STR && rx.test(c.str[b + slot] as string)
  }
  const asNumber = /^-?\d+(\.\d+)?$/.test(literal) ? Number(literal) : undefined
  if (cased) {
    return (c, b) => {
      const t = c.typ[b + slot]
      return t === T_STR ? c.str[b + slot] === literal : t === T_NUM && c.num[b + slot] === asNumber
    }
  }
  const lower = literal.toLowerCase()
  return (c, b) => {
    const t = c.typ[b + slot]
    if (t === T_NUM) return c.num[b + slot] === asNumber
    if (t !== T_STR) return false
    const s = c.str[b + slot] as string
    return s === literal || (s.length === lower.length && lowerCell(c, b + slot, slot) === lower)
  }
}
