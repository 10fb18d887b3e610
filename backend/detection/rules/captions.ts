import type { RuleSet } from './compile.js'

// The lean wire leaves out the captions OCSF derives from ids (class_name,
// activity_name, type_uid, every enum's sibling caption, protocol_name):
// expandRecord (shared/ocsf/lean.ts fillCaptions) gives them back. A rule
// may read one; the projector then fills it in each row of the rule's class
// from the id it derives from, the same way, so the rule matches a lean
// record as it matches the full one.
//
// Which fields are captions, and their tables, come from the OCSF schema
// (caption-tables.ts), loaded only when a rule reads a field that could be
// one: the main thread finds them once and hands them to each detection
// worker as plain data, so no worker loads the schema.

/** A caption a class's rules read: its path, the id's path it derives from, and the table. */
export interface CaptionSpec {
  classUid: number
  path: string
  from: string
  /** id value → caption (or, for type_uid and category_uid, the number) */
  table: Record<number, string | number>
  /** fill over a null too (fillCaptions' `??=`), not only where the caption is absent */
  overNull: boolean
}

/** A caption as the projector fills it: by column slot. */
export interface DerivedCaption {
  slot: number
  from: number
  table: Record<number, string | number>
  overNull: boolean
}

/** Leaves that may be captions without the schema's list of enum siblings saying so. */
export const CLASS_CAPTIONS: ReadonlySet<string> = new Set(['class_name', 'category_uid', 'category_name', 'type_uid', 'type_name', 'protocol_name'])

/** Leaves that are ids, numbers, addresses or times: never captions. */
const NOT_CAPTION = /(_id|_uid|_num|_time|^ip|^port|^uid|^time|^hostname|^pid|^count)$/

/** The fields each class's rules read that could be captions; none: the schema need not be loaded. */
export function captionCandidates (rules: RuleSet): Array<{ classUid: number, path: string }> {
  return rules.routing.classes.flatMap(c => c.slots.map(s => rules.paths[s]).filter(path => {
    const leaf = path.slice(path.lastIndexOf('.') + 1)
    return CLASS_CAPTIONS.has(leaf) || !NOT_CAPTION.test(leaf)
  }).map(path => ({ classUid: c.uid, path })))
}

/** Add the captions to the rules' routing: the ids they derive from are projected for their class. Returns `rules`. */
export function applyCaptions (rules: RuleSet, specs: readonly CaptionSpec[]): RuleSet {
  const slotOf = (path: string): number => {
    let i = rules.paths.indexOf(path)
    if (i < 0) { i = rules.paths.length; rules.paths.push(path) }
    return i
  }
  for (const spec of specs) {
    const c = rules.routing.classes.find(x => x.uid === spec.classUid)
    if (c === undefined) continue
    const d: DerivedCaption = { slot: slotOf(spec.path), from: slotOf(spec.from), table: spec.table, overNull: spec.overNull }
    if (!c.slots.includes(d.from)) c.slots.push(d.from)
    c.captions.push(d)
  }
  return rules
}

/**
 * Find the captions `rules` read and apply them, on the thread that compiled
 * them: the OCSF schema (caption-tables.ts) is loaded only when a rule reads
 * a field that could be a caption. The specs go to the workers as data.
 */
export async function resolveCaptions (rules: RuleSet): Promise<CaptionSpec[]> {
  const captions = captionCandidates(rules).length > 0 ? (await import('./caption-tables.js')).findCaptions(rules) : []
  applyCaptions(rules, captions)
  return captions
}
