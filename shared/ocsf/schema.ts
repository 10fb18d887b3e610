import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { ROOT } from '../paths.js'
import { CLASS, OCSF_VERSION } from './constants.js'
import { compileSchema } from './schema-load.js'
import type { AttrRule, ClassRule, ObjectRule, OcsfSchema, TypeRule } from './schema-load.js'

// Validates OCSF records against the official 1.8.0 schema source files that
// live beside the repository (../shared/ocsf/1.8.0). Tests use it to prove that
// what Picket emits is OCSF, not merely OCSF-shaped.

export type { OcsfSchema } from './schema-load.js'

export interface ValidateOptions {
  /**
   * Treat attributes contributed by a profile (e.g. `device` from `host`) as
   * unknown unless `metadata.profiles` declares that profile, as the OCSF
   * server's validator does. Off by default: any profile the class or object
   * includes is accepted.
   */
  strictProfiles?: boolean
}

export interface ValidationReport {
  errors: string[]
  /** not violations: sibling captions that differ from the enum caption, deprecated attributes, implausible timestamps */
  warnings: string[]
}

const MAX_DEPTH = 64
const GENERATED: ReadonlySet<string> = new Set(['class_uid', 'category_uid', 'type_uid'])

/** Where the default schema folder is looked for, in order. */
export function ocsfSchemaCandidates (): string[] {
  const env = process.env.PICKET_OCSF_DIR
  if (env !== undefined && env !== '') {
    const dir = resolve(env)
    return [dir, join(dir, OCSF_VERSION)]
  }
  // the project's shared folder beside the checkout (the official copy), then
  // the copy vendored in the repo (vendor/ocsf, Apache-2.0, unmodified)
  const out: string[] = []
  for (let dir = dirname(ROOT); ; dir = dirname(dir)) {
    out.push(join(dir, 'shared', 'ocsf', OCSF_VERSION))
    if (dirname(dir) === dir) break
  }
  out.push(join(ROOT, 'vendor', 'ocsf', OCSF_VERSION))
  return out
}

function isSchemaDir (dir: string): boolean {
  return existsSync(join(dir, 'dictionary.json')) && existsSync(join(dir, 'events'))
}

/** The folder `loadOcsfSchema()` would load, or undefined if there is none. */
export function findOcsfSchemaDir (): string | undefined {
  return ocsfSchemaCandidates().find(isSchemaDir)
}

const cache = new Map<string, OcsfSchema>()

/**
 * Load and compile the schema once per folder. `dir` may be the version
 * folder itself or its parent. Returns undefined when the folder is absent;
 * throws when it is present but unreadable.
 */
let defaultLoaded: OcsfSchema | undefined

export function loadOcsfSchema (dir?: string): OcsfSchema | undefined {
  // the default folder is looked for once: finding it stats the file system,
  // and expandRecord asks for the schema once per record
  if (dir === undefined && defaultLoaded !== undefined) return defaultLoaded
  let found: string | undefined
  if (dir === undefined) found = findOcsfSchemaDir()
  else found = [resolve(dir), join(resolve(dir), OCSF_VERSION)].find(isSchemaDir)
  if (found === undefined) return undefined
  let schema = cache.get(found)
  if (schema === undefined) {
    schema = compileSchema(found)
    cache.set(found, schema)
  }
  if (dir === undefined) defaultLoaded = schema
  return schema
}

function isPlain (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v)
}

function show (v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? v.slice(0, 57) + '...' : v)
  if (typeof v === 'bigint') return `${v}n`
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (ArrayBuffer.isView(v)) return 'binary data'
  if (typeof v === 'object') return 'an object'
  return String(v)
}

function join2 (path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`
}

function where (path: string): string {
  return path === '' ? '(root)' : path
}

/** Optimal string alignment distance: edits plus adjacent transpositions (prot → port is 1). */
function editDistance (a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}

function suggest (key: string, rule: ObjectRule): string {
  let best: string | undefined
  let bestD = 3
  for (const name of rule.attrs.keys()) {
    const d = editDistance(key, name)
    if (d < bestD) { best = name; bestD = d }
  }
  return best !== undefined ? ` (did you mean ${best}?)` : ''
}

function enumList (captions: ReadonlyMap<string, string>): string {
  const keys = [...captions.keys()].sort((a, b) => Number(a) - Number(b) || a.localeCompare(b))
  const shown = keys.slice(0, 16).map((k) => `${k} ${captions.get(k) ?? ''}`.trim())
  return shown.join(', ') + (keys.length > 16 ? `, ... (${keys.length} values)` : '')
}

/** Does `v` satisfy the scalar type? Undefined when it does, else the error text. */
function checkScalar (t: TypeRule, v: unknown): string | undefined {
  const bad = `expected ${t.expected}, got ${show(v)}`
  switch (t.primitive) {
    case 'json_t':
      return undefined
    case 'boolean_t':
      if (typeof v !== 'boolean') return bad
      break
    case 'float_t':
      if (typeof v !== 'number' || !Number.isFinite(v)) return bad
      break
    case 'integer_t':
    case 'long_t': {
      let n: number
      if (typeof v === 'bigint') {
        if (v < -(2n ** 63n) || v >= 2n ** 63n) return bad
        n = Number(v)
      } else if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) <= 2 ** 63) {
        n = v
      } else {
        return bad
      }
      if (t.range !== undefined && (n < t.range[0] || n > t.range[1])) return bad
      break
    }
    case 'string_t':
      if (typeof v !== 'string') return bad
      if (t.maxLen !== undefined && v.length > t.maxLen) return `expected ${t.expected}, got a string of ${v.length} characters (at most ${t.maxLen})`
      if (t.test !== undefined && !t.test(v)) return bad
      if (t.regex !== undefined && !t.regex.test(v)) return bad
      break
  }
  if (t.values !== undefined && !t.values.includes(v)) return bad
  return undefined
}

class Run {
  readonly errors: string[] = []
  readonly warnings: string[] = []
  constructor (readonly profiles: ReadonlySet<string>, readonly strict: boolean) {}

  object (rule: ObjectRule, value: Record<string, unknown>, path: string, depth: number, skip?: ReadonlySet<string>): void {
    if (depth > MAX_DEPTH) {
      this.errors.push(`${where(path)}: nested deeper than ${MAX_DEPTH} levels`)
      return
    }
    if (rule.deprecated !== undefined && path !== '') this.warnings.push(`${path}: ${rule.label} is ${rule.deprecated}`)
    for (const key of Object.keys(value)) {
      if (skip?.has(key) === true) continue
      const v = value[key]
      const attr = rule.attrs.get(key)
      const p = join2(path, key)
      if (attr === undefined) {
        if (!rule.open) this.errors.push(`${p}: unknown attribute; ${rule.label} does not define ${key}${suggest(key, rule)}`)
        continue
      }
      if (v === undefined || v === null) continue
      if (this.strict && attr.profile !== undefined && !this.profiles.has(attr.profile)) {
        this.errors.push(`${p}: attribute of profile ${attr.profile}, which metadata.profiles does not declare`)
        continue
      }
      if (attr.deprecated !== undefined) this.warnings.push(`${p}: ${attr.deprecated}`)
      if (!attr.isArray) {
        this.value(attr, v, p, value, path, -1, depth)
      } else if (!Array.isArray(v)) {
        this.errors.push(`${p}: expected an array of ${attr.object?.name ?? attr.type?.expected ?? 'values'}, got ${show(v)}`)
      } else {
        for (let i = 0; i < v.length; i++) {
          if (v[i] === null || v[i] === undefined) this.errors.push(`${p}[${i}]: null element`)
          else this.value(attr, v[i], `${p}[${i}]`, value, path, i, depth)
        }
      }
    }
    for (const name of rule.required) {
      if (skip?.has(name) === true) continue
      if (value[name] === undefined || value[name] === null) this.errors.push(`${join2(path, name)}: required attribute missing (${rule.label})`)
    }
    for (const [name, profile] of rule.profileRequired) {
      if (this.profiles.has(profile) && (value[name] === undefined || value[name] === null)) {
        this.errors.push(`${join2(path, name)}: required attribute missing (profile ${profile}, declared in metadata.profiles)`)
      }
    }
    for (const c of rule.constraints) {
      let n = 0
      for (const a of c.attrs) if (value[a] !== undefined && value[a] !== null) n++
      if (c.kind === 'at_least_one' && n === 0) {
        this.errors.push(`${where(path)}: at least one of ${c.attrs.join(', ')} is required (${rule.label} constraint at_least_one)`)
      } else if (c.kind === 'just_one' && n !== 1) {
        this.errors.push(`${where(path)}: exactly one of ${c.attrs.join(', ')} is required, got ${n} (${rule.label} constraint just_one)`)
      } else if (c.kind !== 'at_least_one' && c.kind !== 'just_one') {
        this.errors.push(`${where(path)}: ${rule.label} has a constraint ${c.kind} this validator does not know`)
      }
    }
  }

  value (attr: AttrRule, v: unknown, path: string, parent: Record<string, unknown>, parentPath: string, index: number, depth: number): void {
    if (attr.object !== undefined) {
      if (isPlain(v)) this.object(attr.object, v, path, depth + 1)
      else this.errors.push(`${path}: expected object ${attr.object.name}, got ${show(v)}`)
      return
    }
    const t = attr.type as TypeRule
    const err = checkScalar(t, v)
    if (err !== undefined) {
      this.errors.push(`${path}: ${err}`)
      return
    }
    if (t.name === 'timestamp_t' && typeof v === 'number' && v !== 0 && (v < 1e11 || v > 1e14)) {
      this.warnings.push(`${path}: ${v} is implausible as milliseconds since the epoch (seconds or nanoseconds?)`)
    }
    if (attr.enumCaptions === undefined) return
    const key = String(v)
    const caption = attr.enumCaptions.get(key)
    if (caption === undefined) {
      // 99 is OCSF's "Other" for every integer enum.
      if (key === '99' && (t.primitive === 'integer_t' || t.primitive === 'long_t')) return
      this.errors.push(`${path}: ${show(v)} is not a defined value of ${attr.name} (${enumList(attr.enumCaptions)})`)
      return
    }
    if (attr.sibling === undefined || key === '99') return
    const sib = index < 0 ? parent[attr.sibling] : (Array.isArray(parent[attr.sibling]) ? (parent[attr.sibling] as unknown[])[index] : undefined)
    if (sib !== undefined && sib !== null && sib !== caption) {
      const sp = join2(parentPath, attr.sibling) + (index < 0 ? '' : `[${index}]`)
      this.warnings.push(`${sp}: ${show(sib)} differs from ${show(caption)}, the caption of ${attr.name} ${key}`)
    }
  }
}

function declaredProfiles (record: Record<string, unknown>): unknown {
  const md = record.metadata
  return isPlain(md) ? md.profiles : undefined
}

/** Does a dotted attribute path (an observable's `name`) exist in the class? */
function pathExists (rule: ObjectRule, name: string): boolean {
  let cur: ObjectRule | undefined = rule
  for (const part of name.split('.')) {
    if (cur === undefined) return false
    const attr: AttrRule | undefined = cur.attrs.get(part)
    if (attr === undefined) return cur.open
    cur = attr.object
  }
  return true
}

/** Validate one record; errors and warnings separately. */
export function validateEventReport (schema: OcsfSchema, record: unknown, options: ValidateOptions = {}): ValidationReport {
  if (!isPlain(record)) return { errors: [`(root): expected an OCSF event object, got ${show(record)}`], warnings: [] }
  const classUid = record.class_uid
  if (classUid === undefined || classUid === null) return { errors: ['class_uid: required attribute missing'], warnings: [] }
  if (typeof classUid !== 'number' || !Number.isInteger(classUid)) {
    return { errors: [`class_uid: expected integer_t (32-bit integer), got ${show(classUid)}`], warnings: [] }
  }
  const cls: ClassRule | undefined = schema.classes.get(classUid)
  if (cls === undefined) return { errors: [`class_uid: no OCSF ${schema.version} class has uid ${classUid}`], warnings: [] }

  const profiles = new Set<string>()
  const pre: string[] = []
  const declared = declaredProfiles(record)
  if (Array.isArray(declared)) {
    declared.forEach((p, i) => {
      if (typeof p !== 'string') return // type error reported by the walk
      if (schema.profiles.has(p)) profiles.add(p)
      else pre.push(`metadata.profiles[${i}]: unknown profile ${show(p)} (known: ${[...schema.profiles].sort().join(', ')})`)
    })
  }

  const run = new Run(profiles, options.strictProfiles === true)
  run.errors.push(...pre)
  if (cls.deprecated !== undefined) run.warnings.push(`class_uid: ${cls.label} is ${cls.deprecated}`)

  // class_uid, category_uid and type_uid carry generated enums; check them here
  // rather than against the placeholder enums in base_event.
  run.object(cls, record, '', 0, GENERATED)
  for (const k of GENERATED) {
    const v = record[k]
    if (v === undefined || v === null) continue
    const attr = cls.attrs.get(k)
    const err = attr?.type !== undefined ? checkScalar(attr.type, v) : undefined
    if (err !== undefined) run.errors.push(`${k}: ${err}`)
  }
  for (const k of ['category_uid', 'type_uid']) {
    if (record[k] === undefined || record[k] === null) run.errors.push(`${k}: required attribute missing (${cls.label})`)
  }

  const categoryUid = record.category_uid
  if (typeof categoryUid === 'number' && categoryUid !== cls.categoryUid) {
    run.errors.push(`category_uid: expected ${cls.categoryUid} (${cls.categoryName}) for ${cls.label}, got ${categoryUid}`)
  }
  const activityId = record.activity_id
  const typeUid = record.type_uid
  if (typeof activityId === 'number' && Number.isInteger(activityId) && typeof typeUid === 'number') {
    const want = classUid * 100 + activityId
    if (typeUid !== want) run.errors.push(`type_uid: expected ${want} (class_uid ${classUid} * 100 + activity_id ${activityId}), got ${typeUid}`)
  }
  if (record.class_name !== undefined && record.class_name !== cls.caption) {
    run.warnings.push(`class_name: ${show(record.class_name)} differs from ${show(cls.caption)}, the caption of class_uid ${classUid}`)
  }
  if (record.category_name !== undefined && record.category_name !== cls.categoryName) {
    run.warnings.push(`category_name: ${show(record.category_name)} differs from ${show(cls.categoryName)}, the caption of category_uid ${cls.categoryUid}`)
  }
  const activity = typeof activityId === 'number' ? cls.attrs.get('activity_id')?.enumCaptions?.get(String(activityId)) : undefined
  if (record.type_name !== undefined && activity !== undefined && activityId !== 99 && record.type_name !== `${cls.caption}: ${activity}`) {
    run.warnings.push(`type_name: ${show(record.type_name)} differs from ${show(`${cls.caption}: ${activity}`)}`)
  }

  const md = record.metadata
  if (isPlain(md) && typeof md.version === 'string') {
    if (!/^\d+\.\d+\.\d+(?:-dev|-rc\.\d+)?$/.test(md.version)) {
      run.errors.push(`metadata.version: expected a semantic version such as ${show(schema.version)}, got ${show(md.version)}`)
    } else if (md.version !== schema.version) {
      run.warnings.push(`metadata.version: ${show(md.version)} differs from the schema version ${show(schema.version)} validated against`)
    }
  }

  const observables = record.observables
  if (Array.isArray(observables)) {
    observables.forEach((o, i) => {
      if (isPlain(o) && typeof o.name === 'string' && !pathExists(cls, o.name)) {
        run.errors.push(`observables[${i}].name: ${show(o.name)} does not name an attribute of ${cls.label}`)
      }
    })
  }
  return { errors: run.errors, warnings: run.warnings }
}

/** Validate one record against `schema`; returns the errors, each prefixed by its JSON path. */
export function validateEvent (schema: OcsfSchema, record: unknown, options?: ValidateOptions): string[] {
  return validateEventReport(schema, record, options).errors
}

function defaultSchema (): OcsfSchema {
  const schema = loadOcsfSchema()
  if (schema === undefined) {
    throw new Error(`OCSF ${OCSF_VERSION} schema folder not found; looked in ${ocsfSchemaCandidates().join(', ')}. Set PICKET_OCSF_DIR to the folder holding dictionary.json.`)
  }
  return schema
}

function validateAs (record: unknown, classUid: number, className: string, options?: ValidateOptions): string[] {
  const errors = validateEvent(defaultSchema(), record, options)
  const got = isPlain(record) ? record.class_uid : undefined
  if (got !== classUid && got !== undefined && got !== null) errors.unshift(`class_uid: expected ${classUid} (${className}), got ${show(got)}`)
  return errors
}

/** Validate against the default schema; throws if the schema folder is absent. */
export function validateNetworkActivity (record: unknown, options?: ValidateOptions): string[] {
  return validateAs(record, CLASS.NETWORK_ACTIVITY.uid, CLASS.NETWORK_ACTIVITY.name, options)
}

/** Validate against the default schema; throws if the schema folder is absent. */
export function validateDetectionFinding (record: unknown, options?: ValidateOptions): string[] {
  return validateAs(record, CLASS.DETECTION_FINDING.uid, CLASS.DETECTION_FINDING.name, options)
}
