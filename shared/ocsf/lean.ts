import { loadOcsfSchema } from './schema.js'
import { badPath, IANA_PROTOCOL, UNSAFE_KEYS } from './lean-wire.js'
import type { ObjectRule, OcsfSchema } from './schema-load.js'

// The lean wire form of a batch (collector.proto Batch.context + records) and
// the one function that turns it back into full OCSF 1.8 objects.
//
//   context  a msgpack map: `shared` holds the fields every record of the
//            batch has in common (metadata, device), once; `shapes` lists,
//            per record shape, the OCSF field paths its values fill, in order.
//   records  a msgpack array; each record is an array [shape, v1, v2, ...]:
//            the values of shapes[shape], a nil value meaning "absent".
//
// A record carries its own fields only. The caption fields OCSF derives from
// ids (class_name, category_uid/_name, activity_name, type_uid/_name,
// severity, every enum's sibling caption, protocol_name) never travel: they
// are filled in here from the schema. A batch still decodes on its own: the
// shapes travel in its own context, never in state shared across batches.
// Records may also be plain OCSF maps (the older, full form).

export interface LeanContext {
  /** fields shared by every record of the batch, merged into each */
  shared?: Record<string, unknown>
  /** record shapes: the flattened OCSF field paths of a record's values */
  shapes?: string[][]
}

export { badPath, IANA_PROTOCOL } from './lean-wire.js'

/** A path's segments, checked once per distinct path (a batch repeats a few dozen paths per record). */
const splitPaths = new Map<string, string[]>()
const SPLIT_CACHE_MAX = 4096

function segments (path: string): string[] {
  let parts = splitPaths.get(path)
  if (parts === undefined) {
    const bad = badPath(path)
    if (bad !== undefined) throw new TypeError(bad)
    parts = path.split('.')
    if (splitPaths.size >= SPLIT_CACHE_MAX) splitPaths.clear()
    splitPaths.set(path, parts)
  }
  return parts
}

function setPath (o: Record<string, unknown>, path: string, v: unknown): void {
  const parts = segments(path)
  let cur = o
  for (let i = 0; i < parts.length - 1; i++) {
    let next = cur[parts[i]]
    if (next === undefined || next === null || typeof next !== 'object') { next = {}; cur[parts[i]] = next }
    cur = next as Record<string, unknown>
  }
  cur[parts[parts.length - 1]] = v
}

function clone (v: unknown): unknown {
  if (Array.isArray(v)) return v.map(clone)
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v)) if (!UNSAFE_KEYS.has(k)) out[k] = clone(x)
    return out
  }
  return v
}

/** The record's own fields as a nested object (no context, no captions). */
export function unflatten (ctx: LeanContext, rec: unknown): Record<string, unknown> {
  if (!Array.isArray(rec)) {
    if (rec === null || typeof rec !== 'object') throw new TypeError(`a record must be a map or a shaped array, got ${rec === null ? 'nil' : typeof rec}`)
    return clone(rec) as Record<string, unknown>
  }
  const shape = ctx.shapes?.[rec[0] as number]
  if (shape === undefined) throw new TypeError(`record shape ${String(rec[0])} is not in the batch's context (it has ${ctx.shapes?.length ?? 0})`)
  if (rec.length - 1 > shape.length) throw new TypeError(`a record of shape ${String(rec[0])} has ${rec.length - 1} values for ${shape.length} fields`)
  const out: Record<string, unknown> = {}
  for (let i = 1; i < rec.length; i++) {
    const v = rec[i]
    if (v !== null && v !== undefined) setPath(out, shape[i - 1], typeof v === 'object' ? clone(v) : v)
  }
  return out
}

function fillObject (schema: OcsfSchema, rule: ObjectRule, o: Record<string, unknown>, depth: number): void {
  if (depth > 16) return
  // the record's own keys, not the class's attributes: a record fills a few
  // of the hundreds its class declares (this was 50-120 µs a record)
  for (const name of Object.keys(o)) {
    const attr = rule.attrs.get(name)
    const v = o[name]
    if (attr === undefined || v === undefined || v === null) continue
    if (attr.enumCaptions !== undefined && attr.sibling !== undefined && o[attr.sibling] === undefined && !attr.isArray) {
      const caption = attr.enumCaptions.get(String(v))
      if (caption !== undefined) o[attr.sibling] = caption
    }
    if (attr.object !== undefined && typeof v === 'object') {
      const items = attr.isArray && Array.isArray(v) ? v : [v]
      for (const item of items) {
        if (item !== null && typeof item === 'object' && !Array.isArray(item)) fillObject(schema, attr.object, item as Record<string, unknown>, depth + 1)
      }
    }
  }
}

/** Fill in every caption OCSF derives from an id, where it is missing. */
export function fillCaptions (o: Record<string, unknown>, schema: OcsfSchema | undefined = loadOcsfSchema()): Record<string, unknown> {
  const classUid = o.class_uid
  const cls = typeof classUid === 'number' ? schema?.classes.get(classUid) : undefined
  if (cls !== undefined && schema !== undefined) {
    o.class_name ??= cls.caption
    o.category_uid ??= cls.categoryUid
    o.category_name ??= cls.categoryName
    if (typeof o.activity_id === 'number') {
      o.type_uid ??= cls.uid * 100 + o.activity_id
      const act = cls.attrs.get('activity_id')?.enumCaptions?.get(String(o.activity_id))
      if (act !== undefined) o.type_name ??= `${cls.caption}: ${act}`
    }
    fillObject(schema, cls, o, 0)
  }
  const ci = o.connection_info as Record<string, unknown> | undefined
  if (ci !== undefined && typeof ci.protocol_num === 'number' && ci.protocol_name === undefined) {
    const name = IANA_PROTOCOL[ci.protocol_num]
    if (name !== undefined) ci.protocol_name = name
  }
  return o
}

/**
 * One record of a batch as the full OCSF object: the context's shared fields,
 * the record's own fields (a record's own value wins), then the captions.
 */
export function expandRecord (ctx: LeanContext, rec: unknown, schema?: OcsfSchema): Record<string, unknown> {
  const own = unflatten(ctx, rec)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(ctx.shared ?? {})) out[k] = clone(v)
  for (const [k, v] of Object.entries(own)) {
    const base = out[k]
    out[k] = base !== null && typeof base === 'object' && !Array.isArray(base) && v !== null && typeof v === 'object' && !Array.isArray(v)
      ? { ...(base as Record<string, unknown>), ...(v as Record<string, unknown>) }
      : v
  }
  return fillCaptions(out, schema ?? loadOcsfSchema())
}

/** Every record of a batch, expanded. */
export function expandBatch (ctx: LeanContext, records: readonly unknown[], schema?: OcsfSchema): Array<Record<string, unknown>> {
  const s = schema ?? loadOcsfSchema()
  return records.map(r => expandRecord(ctx, r, s))
}

// ---- the reference packer -------------------------------------------------
// Generic and slow next to the agent's per-class writers (agent/normalize),
// which must produce what this produces: the injector, the fuzzer, the
// benchmarks' inputs and the tests pack with it. A caption is left out only
// when expandRecord gives it back unchanged, so packing never loses a value.

/** Top-level OCSF objects that every record of an agent's batch shares. */
export const SHARED_KEYS: readonly string[] = ['metadata', 'device']

function isPlainObject (v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Uint8Array)
}

function flatten (o: Record<string, unknown>, prefix: string, out: Array<[string, unknown]>): void {
  for (const [k, v] of Object.entries(o)) {
    if (v === undefined) continue
    const path = prefix === '' ? k : `${prefix}.${k}`
    if (isPlainObject(v) && Object.keys(v).length > 0) flatten(v, path, out)
    else out.push([path, v])
  }
}

function getPath (o: Record<string, unknown>, path: string): unknown {
  let cur: unknown = o
  for (const part of path.split('.')) {
    if (!isPlainObject(cur)) return undefined
    cur = cur[part]
  }
  return cur
}

/** Leaf names that fillCaptions can derive from an id. */
const CAPTION_LEAVES: ReadonlySet<string> = new Set(['class_name', 'category_uid', 'category_name', 'type_uid', 'type_name', 'protocol_name'])

function mayBeCaption (path: string, schema: OcsfSchema | undefined): boolean {
  const leaf = path.slice(path.lastIndexOf('.') + 1)
  return CAPTION_LEAVES.has(leaf) || (schema?.siblings.has(leaf) ?? false)
}

/** A batch in the lean form: its context and its records, not yet msgpack-encoded. */
export interface LeanBatch { context: LeanContext, records: unknown[][] }

/**
 * Full OCSF objects → the lean form. `shared` is taken from the first record
 * (SHARED_KEYS by default); a record whose shared objects differ keeps its
 * own copy in its values, so any mix of records packs without loss.
 */
export function packLean (objects: ReadonlyArray<Record<string, unknown>>, sharedKeys: readonly string[] = SHARED_KEYS, schema: OcsfSchema | undefined = loadOcsfSchema()): LeanBatch {
  const shared: Record<string, unknown> = {}
  const first = objects[0]
  if (first !== undefined) for (const k of sharedKeys) if (first[k] !== undefined) shared[k] = first[k]
  const sharedJson = new Map(Object.entries(shared).map(([k, v]) => [k, JSON.stringify(v)]))
  const shapes: string[][] = []
  const shapeIds = new Map<string, number>()
  const records: unknown[][] = []
  for (const o of objects) {
    const own: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(o)) {
      if (v === undefined) continue
      if (sharedJson.has(k) && JSON.stringify(v) === sharedJson.get(k)) continue
      own[k] = v
    }
    const leaves: Array<[string, unknown]> = []
    flatten(own, '', leaves)
    const kept = leaves.filter(([p]) => !mayBeCaption(p, schema))
    if (kept.length < leaves.length) {
      const probe: LeanContext = { shared, shapes: [kept.map(([p]) => p)] }
      const back = expandRecord(probe, [0, ...kept.map(([, v]) => v)], schema)
      for (const [p, v] of leaves) {
        if (mayBeCaption(p, schema) && getPath(back, p) !== v) kept.push([p, v])
      }
    }
    const paths = kept.map(([p]) => p)
    const key = paths.join('\n')
    let id = shapeIds.get(key)
    if (id === undefined) { id = shapes.length; shapes.push(paths); shapeIds.set(key, id) }
    records.push([id, ...kept.map(([, v]) => v)])
  }
  const context: LeanContext = { shapes }
  if (Object.keys(shared).length > 0) context.shared = shared
  return { context, records }
}
