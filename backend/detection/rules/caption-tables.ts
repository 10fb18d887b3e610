import { OCSF_MAX_ACTIVITY_ID } from '../../../shared/ocsf/constants.js'
import { IANA_PROTOCOL } from '../../../shared/ocsf/lean-wire.js'
import { loadOcsfSchema } from '../../../shared/ocsf/schema.js'
import type { AttrRule, ObjectRule, OcsfSchema } from '../../../shared/ocsf/schema-load.js'
import { captionCandidates, type CaptionSpec } from './captions.js'
import type { RuleSet } from './compile.js'

// Which fields a class's rules read are captions, and how each derives
// from an id: from the OCSF schema, as fillCaptions (shared/ocsf/lean.ts)
// fills them. The main thread runs this once (captions.ts says why).

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

/** The captions among the fields each class's rules read (captions.ts). */
export function findCaptions (rules: RuleSet): CaptionSpec[] {
  const candidates = captionCandidates(rules)
  if (candidates.length === 0) return []
  const schema = loadOcsfSchema()
  if (schema === undefined) return []
  const out: CaptionSpec[] = []
  for (const { classUid, path } of candidates) {
    const d = derivation(schema, classUid, path)
    if (d !== undefined) out.push({ classUid, path, ...d })
  }
  return out
}
