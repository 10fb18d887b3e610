import { CLASS } from '../../../shared/ocsf/constants.js'

// The fields every detection worker projects, whatever the rules say: the
// base event's (every class has them: routing, the time window, the host
// check) and, for network_activity, the endpoints a finding's evidence shows
// (for dns_activity, the query name).
// They open every RuleSet's paths, in this order, so their slots are fixed.

export const HOST_FIELD = 'device.uid'

/**
 * The base event's fields: every record fills them, whatever its class.
 * `count`: a record may stand for several events (the agent folds a flow's
 * repeats into one record), and event counts add it.
 */
export const BASE_FIELDS = ['time', 'class_uid', 'activity_id', HOST_FIELD, 'device.hostname', 'device.type_id', 'count'] as const

/** network_activity's evidence fields. */
export const NETWORK_EVIDENCE = [
  'src_endpoint.ip', 'src_endpoint.port', 'dst_endpoint.ip', 'dst_endpoint.port',
  'connection_info.protocol_num', 'connection_info.direction_id',
] as const

/** dns_activity's evidence field: the name asked, the one thing a DNS finding's evidence must show. */
export const DNS_EVIDENCE = ['query.hostname'] as const

export const EVIDENCE_FIELDS = [...BASE_FIELDS, ...NETWORK_EVIDENCE, ...DNS_EVIDENCE] as const

export type EvidenceField = typeof EVIDENCE_FIELDS[number]

/** Each evidence field's column slot. */
export const EVIDENCE_SLOT = Object.freeze(Object.fromEntries(EVIDENCE_FIELDS.map((f, i) => [f, i]))) as { readonly [F in EvidenceField]: number }

/** The evidence slots each class adds to the base ones. */
export const CLASS_EVIDENCE: ReadonlyMap<number, readonly number[]> = new Map([
  [CLASS.NETWORK_ACTIVITY.uid, NETWORK_EVIDENCE.map(f => EVIDENCE_SLOT[f])],
  [CLASS.DNS_ACTIVITY.uid, DNS_EVIDENCE.map(f => EVIDENCE_SLOT[f])],
])
