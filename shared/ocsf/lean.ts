import { loadOcsfSchema } from './schema.js'
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

/** IANA protocol numbers → OCSF protocol_name (the lower-case keyword). */
export const IANA_PROTOCOL: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp' }

function setPath (o: Record<string, unknown>, path: string, v: unknown): void {
  const parts = path.split('.')
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
    for (const [k, x] of Object.entries(v)) out[k] = clone(x)
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
    if (v !== null && v !== undefined) setPath(out, shape[i - 1], clone(v))
  }
  return out
}

function fillObject (schema: OcsfSchema, rule: ObjectRule, o: Record<string, unknown>, depth: number): void {
  if (depth > 16) return
  for (const [name, attr] of rule.attrs) {
    const v = o[name]
    if (v === undefined || v === null) continue
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
