import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { isIP } from 'node:net'
import { basename, join } from 'node:path'

// Compiles the raw OCSF schema source (events/, objects/, profiles/,
// dictionary.json, categories.json) into per-class and per-object rule tables,
// once per folder. The semantics follow the OCSF server and ocsf-lib-py
// compilers: attributes are deep-merged dictionary ← base ← derived, `$include`d
// profile attributes are tagged with their profile, a derived `constraints`
// block replaces the inherited one, and the datetime profile adds an optional
// `<name>_dt` (datetime_t) beside every timestamp_t attribute.

export type Primitive = 'string_t' | 'integer_t' | 'long_t' | 'float_t' | 'boolean_t' | 'json_t'
export type Requirement = 'required' | 'recommended' | 'optional'

export interface TypeRule {
  readonly name: string
  readonly primitive: Primitive
  /** what an error says was expected, e.g. `port_t (integer 0..65535)` */
  readonly expected: string
  readonly range?: readonly [number, number]
  readonly maxLen?: number
  readonly regex?: RegExp
  readonly values?: readonly unknown[]
  /** a check stricter than the dictionary's regex (ip_t, url_t) */
  readonly test?: (s: string) => boolean
}

export interface AttrRule {
  readonly name: string
  readonly requirement: Requirement
  readonly isArray: boolean
  /** set for scalar attributes */
  readonly type?: TypeRule
  /** set for object attributes; filled in once every object shell exists */
  object?: ObjectRule
  /** enum key (as written in the schema, e.g. "1") → caption */
  readonly enumCaptions?: ReadonlyMap<string, string>
  readonly sibling?: string
  /** the profile that contributes this attribute, if any */
  readonly profile?: string
  readonly deprecated?: string
}

export interface Constraint { readonly kind: string, readonly attrs: readonly string[] }

export interface ObjectRule {
  readonly name: string
  readonly caption: string
  /** how messages name it: `object network_endpoint` or `class network_activity (4001)` */
  readonly label: string
  readonly attrs: Map<string, AttrRule>
  /** no attributes defined (the generic `object`): any key is allowed */
  open: boolean
  /** required attributes that come from no profile */
  readonly required: string[]
  /** required attributes that apply only when their profile is declared */
  readonly profileRequired: Array<readonly [attr: string, profile: string]>
  readonly constraints: Constraint[]
  readonly deprecated?: string
}

export interface ClassRule extends ObjectRule {
  readonly uid: number
  readonly categoryUid: number
  readonly categoryName: string
  /** profiles named by the class and its bases */
  readonly profiles: readonly string[]
}

export interface OcsfSchema {
  readonly version: string
  readonly dir: string
  readonly classes: ReadonlyMap<number, ClassRule>
  readonly classesByName: ReadonlyMap<string, ClassRule>
  readonly objects: ReadonlyMap<string, ObjectRule>
  readonly profiles: ReadonlySet<string>
  /** every attribute name that is an enum's sibling caption (activity_name, status, ...) */
  readonly siblings: ReadonlySet<string>
  /** schema features that were skipped or degraded while compiling */
  readonly notes: readonly string[]
}

type Json = Record<string, any>

interface RawDef { name: string, file: string, data: Json }

function readJson (file: string): Json {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Json
  } catch (err) {
    throw new Error(`OCSF schema: cannot read ${file}: ${(err as Error).message}`)
  }
}

function jsonFiles (dir: string): string[] {
  if (!existsSync(dir)) return []
  const out: string[] = []
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) out.push(...jsonFiles(p))
    else if (name.endsWith('.json')) out.push(p)
  }
  return out
}

function isPlain (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Deep merge, `over` winning; never mutates either side. */
function deepMerge (base: any, over: any): any {
  if (over === undefined) return base
  if (!isPlain(base) || !isPlain(over)) return over
  const out: Json = { ...base }
  for (const k of Object.keys(over)) out[k] = k in base ? deepMerge(base[k], over[k]) : over[k]
  return out
}

function stripHtml (s: string): string {
  return s.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ').trim()
}

function deprecationText (d: unknown): string | undefined {
  if (!isPlain(d)) return undefined
  const since = typeof d.since === 'string' ? ` since ${d.since}` : ''
  const msg = typeof d.message === 'string' ? `: ${stripHtml(d.message)}` : ''
  return `deprecated${since}${msg}`
}

const INT32: readonly [number, number] = [-(2 ** 31), 2 ** 31 - 1]

function isUrl (s: string): boolean {
  return URL.canParse(s)
}

function compileTypes (dict: Json, notes: string[]): Map<string, TypeRule> {
  const raw: Json = dict.types?.attributes ?? {}
  const out = new Map<string, TypeRule>()
  const primitives = new Set<string>(['string_t', 'integer_t', 'long_t', 'float_t', 'boolean_t', 'json_t'])
  const primitiveOf = (name: string, seen = new Set<string>()): Primitive | undefined => {
    if (primitives.has(name)) return name as Primitive
    const t = raw[name]
    if (!isPlain(t) || typeof t.type !== 'string' || seen.has(name)) return undefined
    seen.add(name)
    return primitiveOf(t.type, seen)
  }
  for (const [name, t] of Object.entries(raw)) {
    if (!isPlain(t)) continue
    const primitive = primitiveOf(name)
    if (primitive === undefined) {
      notes.push(`type ${name}: no primitive base type; values are not checked`)
      out.set(name, { name, primitive: 'json_t', expected: name })
      continue
    }
    // A subtype inherits its base type's constraints unless it sets its own.
    const base = typeof t.type === 'string' && isPlain(raw[t.type]) ? raw[t.type] : {}
    const range = Array.isArray(t.range) ? t.range : Array.isArray(base.range) ? base.range : undefined
    const maxLen = typeof t.max_len === 'number' ? t.max_len : typeof base.max_len === 'number' ? base.max_len : undefined
    const values = Array.isArray(t.values) ? t.values : Array.isArray(base.values) ? base.values : undefined
    const source = typeof t.regex === 'string' ? t.regex : typeof base.regex === 'string' ? base.regex : undefined
    let regex: RegExp | undefined
    let test: ((s: string) => boolean) | undefined
    if (name === 'ip_t') {
      // The dictionary's ip_t regex leaves its dots unescaped; node:net is exact.
      test = (s) => isIP(s) !== 0
    } else if (name === 'url_t') {
      test = isUrl
    } else if (source !== undefined) {
      try {
        regex = new RegExp(source.includes('^') ? source : `^(?:${source})$`)
      } catch (err) {
        notes.push(`type ${name}: regex does not compile in JavaScript (${(err as Error).message}); not checked`)
      }
    }
    let expected: string
    if (name === 'ip_t') expected = 'ip_t (IPv4 or IPv6 address)'
    else if (name === 'timestamp_t') expected = 'timestamp_t (integer milliseconds since the epoch)'
    else if (name === 'integer_t') expected = 'integer_t (32-bit integer)'
    else if (name === 'long_t') expected = 'long_t (64-bit integer)'
    else if (primitive === 'string_t') expected = name === 'string_t' ? 'string_t (string)' : `${name} (string: ${String(t.caption ?? name)})`
    else if (primitive === 'integer_t' || primitive === 'long_t') expected = `${name} (integer${range !== undefined ? ` ${range[0]}..${range[1]}` : ''})`
    else if (primitive === 'float_t') expected = `${name} (number)`
    else if (primitive === 'boolean_t') expected = `${name} (boolean)`
    else expected = `${name} (any JSON value)`
    const rule: Mutable<TypeRule> = { name, primitive, expected }
    if (range !== undefined) rule.range = [Number(range[0]), Number(range[1])]
    else if (primitive === 'integer_t') rule.range = INT32
    if (maxLen !== undefined) rule.maxLen = maxLen
    if (regex !== undefined) rule.regex = regex
    if (values !== undefined) rule.values = values
    if (test !== undefined) rule.test = test
    out.set(name, rule)
  }
  return out
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

export function compileSchema (dir: string): OcsfSchema {
  const notes: string[] = []
  const dict = readJson(join(dir, 'dictionary.json'))
  const categories: Json = readJson(join(dir, 'categories.json')).attributes ?? {}
  const versionFile = join(dir, 'version.json')
  const version = existsSync(versionFile) ? String(readJson(versionFile).version) : basename(dir)
  const dictAttrs: Json = dict.attributes ?? {}
  const types = compileTypes(dict, notes)

  const table = (sub: string): Map<string, RawDef> => {
    const m = new Map<string, RawDef>()
    for (const file of jsonFiles(join(dir, sub))) {
      const data = readJson(file)
      const name = typeof data.name === 'string' ? data.name : basename(file, '.json')
      if (m.has(name)) notes.push(`${sub}: ${name} is defined twice; ${file} ignored`)
      else m.set(name, { name, file, data })
    }
    return m
  }
  const rawEvents = table('events')
  const rawObjects = table('objects')
  const rawProfiles = table('profiles')

  // $include paths are relative to the schema root ("profiles/host.json").
  const includeCache = new Map<string, Json>()
  const included = (ref: string, from: string): Json => {
    let attrs = includeCache.get(ref)
    if (attrs !== undefined) return attrs
    const file = join(dir, ref)
    attrs = {}
    if (!existsSync(file)) {
      notes.push(`${from}: $include ${ref} not found`)
    } else {
      const data = readJson(file)
      const profile = data.meta === 'profile' && typeof data.name === 'string' ? data.name : undefined
      for (const [k, v] of Object.entries<Json>(data.attributes ?? {})) {
        if (k === '$include') continue
        attrs[k] = profile !== undefined && v.profile === undefined ? { ...v, profile } : v
      }
    }
    includeCache.set(ref, attrs)
    return attrs
  }

  interface Resolved { attrs: Json, constraints: Json | undefined, category: string | undefined, profiles: string[] }
  const resolve = (defs: Map<string, RawDef>, kind: string) => {
    const memo = new Map<string, Resolved>()
    const go = (name: string, stack: string[]): Resolved => {
      const hit = memo.get(name)
      if (hit !== undefined) return hit
      const def = defs.get(name)
      if (def === undefined) throw new Error(`OCSF schema: ${kind} ${stack.at(-1) ?? '?'} extends unknown ${kind} ${name}`)
      if (stack.includes(name)) throw new Error(`OCSF schema: ${kind} inheritance cycle ${[...stack, name].join(' → ')}`)
      const d = def.data
      const base: Resolved = typeof d.extends === 'string' && d.extends !== name
        ? go(d.extends, [...stack, name])
        : { attrs: {}, constraints: undefined, category: undefined, profiles: [] }
      const own: Json = {}
      const rawAttrs: Json = isPlain(d.attributes) ? d.attributes : {}
      const inc = rawAttrs.$include
      for (const ref of typeof inc === 'string' ? [inc] : Array.isArray(inc) ? inc : []) {
        for (const [k, v] of Object.entries(included(String(ref), def.file))) own[k] = deepMerge(own[k], v)
      }
      for (const [k, v] of Object.entries(rawAttrs)) if (k !== '$include') own[k] = deepMerge(own[k], v)
      const attrs: Json = { ...base.attrs }
      for (const [k, v] of Object.entries(own)) attrs[k] = deepMerge(attrs[k], v)
      const r: Resolved = {
        attrs,
        constraints: isPlain(d.constraints) ? d.constraints : base.constraints,
        category: typeof d.category === 'string' ? d.category : base.category,
        profiles: [...new Set([...base.profiles, ...(Array.isArray(d.profiles) ? d.profiles.map(String) : [])])],
      }
      memo.set(name, r)
      return r
    }
    return (name: string) => go(name, [])
  }
  const resolveObject = resolve(rawObjects, 'object')
  const resolveEvent = resolve(rawEvents, 'class')

  // Every object gets a shell first so object attributes can point at each
  // other (process.parent_process → process) by reference.
  const objects = new Map<string, ObjectRule>()
  for (const [name, def] of rawObjects) {
    objects.set(name, {
      name,
      caption: String(def.data.caption ?? name),
      label: `object ${name}`,
      attrs: new Map(),
      open: false,
      required: [],
      profileRequired: [],
      constraints: [],
      ...(def.data['@deprecated'] !== undefined ? { deprecated: deprecationText(def.data['@deprecated']) } : {}),
    })
  }

  const observableCaptions = new Map<string, string>()
  const noteObservable = (n: unknown, caption: string): void => {
    if (typeof n === 'number' && !observableCaptions.has(String(n))) observableCaptions.set(String(n), caption)
  }
  for (const t of Object.values<Json>(dict.types?.attributes ?? {})) noteObservable(t.observable, String(t.caption))
  for (const a of Object.values<Json>(dictAttrs)) noteObservable(a.observable, String(a.caption))

  const fill = (rule: ObjectRule, resolved: Resolved, ownerCaption: string): void => {
    const merged: Json = { ...resolved.attrs }
    for (const [k, v] of Object.entries<Json>(resolved.attrs)) {
      const full = deepMerge(dictAttrs[k] ?? {}, v)
      if (full.type === 'timestamp_t' && merged[`${k}_dt`] === undefined) {
        merged[`${k}_dt`] = { type: 'datetime_t', requirement: 'optional', profile: 'datetime' }
      }
    }
    for (const [k, v] of Object.entries<Json>(merged)) {
      if (dictAttrs[k] === undefined && v.type === undefined) notes.push(`${rule.label}: attribute ${k} is not in the dictionary`)
      const full: Json = deepMerge(dictAttrs[k] ?? {}, v)
      noteObservable(v.observable, `${ownerCaption}: ${String(full.caption ?? k)}`)
      const requirement: Requirement = full.requirement === 'required' || full.requirement === 'recommended' ? full.requirement : 'optional'
      const attr: Mutable<AttrRule> = { name: k, requirement, isArray: full.is_array === true }
      const typeName = typeof full.type === 'string' ? full.type : 'json_t'
      const t = types.get(typeName)
      if (t !== undefined) attr.type = t
      else if (objects.has(typeName)) attr.object = objects.get(typeName)
      else {
        notes.push(`${rule.label}: attribute ${k} has unknown type ${typeName}; not checked`)
        attr.type = types.get('json_t') ?? { name: 'json_t', primitive: 'json_t', expected: 'json_t' }
      }
      if (isPlain(full.enum)) {
        attr.enumCaptions = new Map(Object.entries<Json>(full.enum).map(([key, e]) => [key, String(e?.caption ?? key)]))
      }
      if (typeof full.sibling === 'string') attr.sibling = full.sibling
      if (typeof full.profile === 'string') attr.profile = full.profile
      const dep = deprecationText(full['@deprecated'])
      if (dep !== undefined) attr.deprecated = dep
      rule.attrs.set(k, attr)
      if (requirement === 'required') {
        if (attr.profile !== undefined) rule.profileRequired.push([k, attr.profile])
        else rule.required.push(k)
      }
    }
    rule.open = rule.attrs.size === 0
    for (const [kind, list] of Object.entries(resolved.constraints ?? {})) {
      if (Array.isArray(list)) rule.constraints.push({ kind, attrs: list.map(String) })
    }
  }

  for (const [name, rule] of objects) {
    const def = rawObjects.get(name) as RawDef
    fill(rule, resolveObject(name), String(def.data.caption ?? name))
    noteObservable(def.data.observable, rule.caption)
  }

  const classes = new Map<number, ClassRule>()
  const classesByName = new Map<string, ClassRule>()
  for (const [name, def] of rawEvents) {
    // Classes without a uid (network, finding, ...) are abstract bases.
    if (typeof def.data.uid !== 'number' && name !== 'base_event') continue
    const resolved = resolveEvent(name)
    const cat: Json | undefined = resolved.category !== undefined ? categories[resolved.category] : undefined
    const categoryUid = typeof cat?.uid === 'number' ? cat.uid : 0
    const uid = categoryUid * 1000 + (typeof def.data.uid === 'number' ? def.data.uid : 0)
    const caption = String(def.data.caption ?? name)
    const rule: ClassRule = {
      name,
      caption,
      label: `class ${name} (${uid})`,
      attrs: new Map(),
      open: false,
      required: [],
      profileRequired: [],
      constraints: [],
      uid,
      categoryUid,
      categoryName: String(cat?.caption ?? 'Uncategorized'),
      profiles: resolved.profiles,
      ...(def.data['@deprecated'] !== undefined ? { deprecated: deprecationText(def.data['@deprecated']) } : {}),
    }
    fill(rule, resolved, caption)
    if (classes.has(uid)) notes.push(`class uid ${uid} is used by ${classes.get(uid)?.name} and ${name}; ${name} ignored`)
    else classes.set(uid, rule)
    classesByName.set(name, rule)
  }

  // observable.type_id's enum is generated from every `observable` number in
  // the schema (types, dictionary attributes, objects, object attributes).
  const observable = objects.get('observable')?.attrs.get('type_id')
  if (observable?.enumCaptions !== undefined) {
    const merged = new Map(observable.enumCaptions)
    for (const [k, c] of observableCaptions) if (!merged.has(k)) merged.set(k, c)
    objects.get('observable')?.attrs.set('type_id', { ...observable, enumCaptions: merged })
  }

  const siblings = new Set<string>()
  for (const a of Object.values<Json>(dictAttrs)) if (typeof a.sibling === 'string') siblings.add(a.sibling)
  return { version, dir, classes, classesByName, objects, profiles: new Set(rawProfiles.keys()), siblings, notes }
}
