import { OCSF_MAX_ACTIVITY_ID } from '../../../shared/ocsf/constants.js'
import { IANA_PROTOCOL } from '../../../shared/ocsf/lean.js'
import { loadOcsfSchema } from '../../../shared/ocsf/schema.js'
import type { AttrRule, ObjectRule, OcsfSchema } from '../../../shared/ocsf/schema-load.js'

// The lean wire leaves out the captions OCSF derives from ids (class_name,
// activity_name, type_uid, every enum's sibling caption, protocol_name):
// expandRecord (shared/ocsf/lean.ts fillCaptions) gives them back. A rule
// may read one; the projector then fills it in each row of the rule's class
// from the id it derives from, the same way, so the rule matches a lean
// record as it matches the full one.

/** One caption a class's rules read, filled from an id when the record carries none. */
export interface DerivedCaption {
  /** the caption's slot, and the slot of the id it derives from */
  slot: number
  from: number
  /** id value → caption (or, for type_uid and category_uid, the number) */
  table: Record<number, string | number>
  /** fill over a null too (fillCaptions' `??=`), not only where the caption is absent */
  overNull: boolean
}

/** Leaves that may be captions without the schema's list of enum siblings saying so. */
const CLASS_CAPTIONS = new Set(['class_name', 'category_uid', 'category_name', 'type_uid', 'type_name', 'protocol_name'])

/** Could `path` be a caption? Paths no rule reads as one need no schema. */
function mayBeCaption (path: string): boolean {
  const leaf = path.slice(path.lastIndexOf('.') + 1)
  return CLASS_CAPTIONS.has(leaf) || !/(_id|_uid|^ip|^port|^uid|time)$/.test(leaf)
}

function activities (schema: OcsfSchema, classUid: number): Array<[number, string | undefined]> {
  const captions = schema.classes.get(classUid)?.attrs.get('activity_id')?.enumCaptions
  return [...Array.from({ length: OCSF_MAX_ACTIVITY_ID + 1 }, (_, i) => i), 99].map(a => [a, captions?.get(String(a))])
}

/** How `path` derives from an id in class `classUid`: the id's path and its table, or undefined when it is no caption. */
function derivation (schema: OcsfSchema, classUid: number, path: string): { from: string, table: Record<number, string | number>, overNull: boolean } | undefined {
  const cls = schema.classes.get(classUid)
  if (cls === undefined) return undefined
  const one = (v: string | number): Record<number, string | number> => ({ [classUid]: v })
  switch (path) {
    case 'class_name': return { from: 'class_uid', table: one(cls.caption), overNull: true }
    case 'category_uid': return { from: 'class_uid', table: one(cls.categoryUid), overNull: true }
    case 'category_name': return { from: 'class_uid', table: one(cls.categoryName), overNull: true }
    case 'type_uid': return { from: 'activity_id', table: Object.fromEntries(activities(schema, classUid).map(([a]) => [a, classUid * 100 + a])), overNull: true }
    case 'type_name': return { from: 'activity_id', table: Object.fromEntries(activities(schema, classUid).filter(([, c]) => c !== undefined).map(([a, c]) => [a, `${cls.caption}: ${String(c)}`])), overNull: true }
    case 'connection_info.protocol_name': return { from: 'connection_info.protocol_num', table: { ...IANA_PROTOCOL }, overNull: false }
  }
  const parts = path.split('.')
  let obj: ObjectRule | undefined = cls
  for (const part of parts.slice(0, -1)) {
    const attr: AttrRule | undefined = obj?.attrs.get(part)
    if (attr === undefined || attr.isArray) return undefined
    obj = attr.object
  }
  const leaf = parts[parts.length - 1]
  for (const attr of obj?.attrs.values() ?? []) {
    if (attr.sibling !== leaf || attr.enumCaptions === undefined || attr.isArray) continue
    const table: Record<number, string> = {}
    for (const [k, v] of attr.enumCaptions) if (/^-?\d+$/.test(k)) table[Number(k)] = v
    return { from: [...parts.slice(0, -1), attr.name].join('.'), table, overNull: false }
  }
  return undefined
}

/**
 * The captions among the paths a class's rules read. `slotOf` gives (and
 * adds) a path's slot: the id a caption derives from is projected too. The
 * schema is loaded only when a path could be a caption.
 */
export function derivedCaptions (classUid: number, paths: readonly string[], slotOf: (path: string) => number): DerivedCaption[] {
  const candidates = paths.filter(mayBeCaption)
  if (candidates.length === 0) return []
  const schema = loadOcsfSchema()
  if (schema === undefined) return []
  const out: DerivedCaption[] = []
  for (const path of candidates) {
    const d = derivation(schema, classUid, path)
    if (d !== undefined) out.push({ slot: slotOf(path), from: slotOf(d.from), table: d.table, overNull: d.overNull })
  }
  return out
}
