import { CLASS } from '../../../shared/ocsf/constants.js'
import type { ClassRouting } from '../projector.js'
import { BASE_FIELDS, CLASS_EVIDENCE, EVIDENCE_SLOT } from './evidence.js'

// A rule's logsource.category names the one OCSF event class its records
// come from: Sigma's category (network_connection, process_creation,
// file_event, dns_query, ...) or the OCSF class name itself. The projector
// and the engine route each record by its class_uid to the rules of that
// class only (ADR 044: one union, one variant per class).

const PROCESS_ACTIVITY = CLASS.PROCESS_ACTIVITY.uid
const FILE_ACTIVITY = CLASS.FILE_ACTIVITY.uid
const DNS_ACTIVITY = CLASS.DNS_ACTIVITY.uid

/** Sigma category or OCSF class name → class_uid. */
export const CATEGORY_CLASS: Readonly<Record<string, number>> = Object.freeze({
  network_connection: CLASS.NETWORK_ACTIVITY.uid,
  network_activity: CLASS.NETWORK_ACTIVITY.uid,
  process_creation: PROCESS_ACTIVITY,
  process_activity: PROCESS_ACTIVITY,
  file_event: FILE_ACTIVITY,
  file_activity: FILE_ACTIVITY,
  dns_query: DNS_ACTIVITY,
  dns: DNS_ACTIVITY,
  dns_activity: DNS_ACTIVITY,
})

/** Sigma's other file categories (file_access, file_change, file_delete, file_rename, ...) are file_activity too. */
const FILE_PREFIX = 'file_'

/** The class_uid of a logsource, or why it has none. */
export function classOf (logsource: Record<string, unknown> | undefined): { uid: number } | { problem: string } {
  const cat = logsource?.category
  const known = `${Object.keys(CATEGORY_CLASS).join(', ')} or another ${FILE_PREFIX}* category`
  if (cat === undefined) return { problem: `logsource.category is missing: it names the event class the rule reads (${known})` }
  if (typeof cat !== 'string') return { problem: `logsource.category must be a string (${known})` }
  const uid = Object.hasOwn(CATEGORY_CLASS, cat) ? CATEGORY_CLASS[cat] : cat.startsWith(FILE_PREFIX) ? FILE_ACTIVITY : undefined
  if (uid === undefined) return { problem: `logsource.category '${cat}' names no event class Picket routes records by; use ${known}` }
  return { uid }
}

/**
 * Which slots each class's records fill: the base fields, the class's
 * evidence, and every field a rule of the class reads (`reads[d]`: detection
 * rule d's selections, filters and correlations). Captions among them are
 * added later (captions.ts applyCaptions).
 */
export function routeClasses (detections: ReadonlyArray<{ classUid: number }>, reads: ReadonlyArray<ReadonlySet<number>>): ClassRouting {
  const base = BASE_FIELDS.map(f => EVIDENCE_SLOT[f])
  const byClass = new Map<number, Set<number>>()
  detections.forEach((d, i) => {
    const slots = byClass.get(d.classUid) ?? new Set(CLASS_EVIDENCE.get(d.classUid))
    for (const s of reads[i]) slots.add(s)
    byClass.set(d.classUid, slots)
  })
  return {
    base,
    classes: [...byClass].map(([uid, slots]) => ({ uid, slots: [...slots].sort((a, b) => a - b), captions: [] })),
    classSlot: EVIDENCE_SLOT.class_uid,
  }
}
