import { randomUUID } from 'node:crypto'
import {
  ANALYTIC_TYPE, CATEGORY, CLASS, DEVICE_TYPE_NAME, DIRECTION_NAME, FINDING_ACTIVITY, FINDING_ACTIVITY_NAME, FINDING_STATUS,
  NET_ACTIVITY_NAME, OBSERVABLE_TYPE, OCSF_VERSION, PRODUCT, SEVERITY_NAME, typeUid,
} from '../../shared/ocsf/constants.js'
import { IANA_PROTOCOL } from '../../shared/ocsf/lean-wire.js'
import type { DetectionFinding } from '../../shared/ocsf/types.js'
import type { Ev, Incident, ValStat } from './incident.js'

// Incident → OCSF 1.8.0 detection_finding (class 2004). Shared by the host
// stage (in the workers) and the fleet stage (on the main thread).

export type FindingActivity = 'create' | 'update' | 'close'

/** What the store indexes; taken from the incident, never parsed back out of JSON. */
export interface FindingSummary {
  id: string
  rule: string
  ruleName: string
  title: string
  technique: string
  tactic: string
  severityId: number
  /** the scanned host; undefined for fleet findings that span hosts */
  hostId: string | undefined
  /** up to 1000 of each; the totals count all of them */
  hosts: string[]
  hostsTotal: number
  sources: string[]
  sourcesTotal: number
  portCount: number
  firstSeen: number
  lastSeen: number
  records: number
}

export interface FindingEvent {
  activity: FindingActivity
  finding: DetectionFinding
  summary: FindingSummary
  /** wall time the crossing batch reached the collector (Create only): detection latency starts here */
  crossRecvAt: number | undefined
}

const LIST_CAP = 1000
/** distinct values shown when they are not ports (a sample: names can be long) */
const VALUE_SAMPLE = 20
const NETWORK = CLASS.NETWORK_ACTIVITY.uid
const DNS = CLASS.DNS_ACTIVITY.uid
const CLASS_SOURCE: Record<number, string> = { 1001: 'file_activity', 1007: 'process_activity', 4001: 'network_activity', 4003: 'dns_activity' }

const ACTIVITY_ID: Record<FindingActivity, number> = { create: FINDING_ACTIVITY.CREATE, update: FINDING_ACTIVITY.UPDATE, close: FINDING_ACTIVITY.CLOSE }

function fmtTemplate (tpl: string, vars: Record<string, string | number | undefined>): string {
  return tpl.replace(/\{([A-Za-z_][A-Za-z0-9_.]*)\}/g, (m, k: string) => vars[k] !== undefined ? String(vars[k]) : m)
}

function statList<K extends string | number> (entries: Iterable<[K, ValStat]>, key: string): Array<Record<string, unknown>> {
  return [...entries]
    .sort((a, b) => typeof a[0] === 'number' && typeof b[0] === 'number' ? a[0] - b[0] : String(a[0]).localeCompare(String(b[0])))
    .slice(0, LIST_CAP)
    .map(([k, s]) => ({ [key]: k, count: s.count, first_seen_time: s.first, last_seen_time: s.last }))
}

/**
 * One evidence record as the finding shows it: the record's own values, and
 * the captions expandRecord gives them (shared/ocsf/lean.ts fillCaptions;
 * the tables here are the schema's, test/backend/evidence-shows-the-record
 * checks them). Where OCSF requires a field the record did not carry
 * (device.type_id, connection_info.direction_id), it shows 0, Unknown.
 */
function evidence (e: Ev, role: string): Record<string, unknown> {
  const dtype = e.dtype >= 0 ? e.dtype : 0
  const cls = e.cls ?? NETWORK
  const net = cls === NETWORK
  const out: Record<string, unknown> = {
    name: role,
    ...(net ? { src_endpoint: { ...(e.sip !== undefined ? { ip: e.sip } : {}), ...(e.sport >= 0 ? { port: e.sport } : {}) } } : {}),
    ...(net ? { dst_endpoint: { ...(e.dip !== undefined ? { ip: e.dip } : {}), ...(e.dport >= 0 ? { port: e.dport } : {}) } } : {}),
    ...(cls === DNS && e.qname !== undefined ? { query: { hostname: e.qname } } : {}),
    device: { type_id: dtype, ...caption('type', DEVICE_TYPE_NAME[dtype]), uid: e.host, ...(e.hostname !== undefined ? { hostname: e.hostname } : {}) },
    data: { ...(Number.isFinite(e.rt) ? { time: e.rt } : {}), class_uid: cls, activity_id: e.act, ...(net ? caption('activity_name', NET_ACTIVITY_NAME[e.act]) : {}) },
  }
  if (net && (e.dir >= 0 || e.proto >= 0)) {
    const dir = e.dir >= 0 ? e.dir : 0
    out.connection_info = {
      direction_id: dir,
      ...caption('direction', DIRECTION_NAME[dir]),
      ...(e.proto >= 0 ? { protocol_num: e.proto, ...caption('protocol_name', IANA_PROTOCOL[e.proto]) } : {}),
    }
  }
  return out
}

function caption (key: string, value: string | undefined): Record<string, string> {
  return value !== undefined ? { [key]: value } : {}
}

function humanDuration (ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '0 s'
  if (ms < 1000) return `${ms} ms`
  if (ms < 120_000) return `${(ms / 1000).toFixed(1)} s`
  return `${Math.round(ms / 60_000)} min`
}

/** `closedBy` says why a Close came before the incident went quiet (the memory budget evicted it). */
export function buildFinding (inc: Incident, activity: FindingActivity, nowWall: number, productVersion: string, closedBy?: string): FindingEvent {
  const spec = inc.spec
  const portCount = inc.ports.count
  const hostIds = [...inc.hosts.keys()]
  const primaryHost = spec.stage === 'host' ? (inc.groupValues['device.uid'] as string | undefined) ?? hostIds[0] : undefined
  const primary = primaryHost !== undefined ? inc.hosts.get(primaryHost) : undefined
  const hostLabel = primaryHost !== undefined ? (primary?.hostname !== undefined && primary.hostname !== primaryHost ? `${primary.hostname} (${primaryHost})` : primaryHost) : `${hostIds.length} hosts`
  const sources = [...inc.sources.keys()]
  const vars: Record<string, string | number | undefined> = {
    ...inc.groupValues,
    host: hostLabel,
    host_id: primaryHost,
    hosts: inc.hosts.size,
    sources: inc.sources.size,
    ports: portCount,
    count: inc.distinct,
  }
  const title = fmtTemplate(spec.findingTitle, vars)
  const span = humanDuration(inc.lastSeen - inc.firstSeen)
  const attack = spec.attacks[0]
  const actId = ACTIVITY_ID[activity]
  const evs = inc.evidenceList()
  const cls = evs[0]?.cls ?? NETWORK
  // a rule that counts other values (DNS names, ...) says how many; a
  // process, file or DNS rule counts matching events, not probed ports
  const portField = spec.field === 'dst_endpoint.port'
  const message = !portField && inc.values.size > 0
    ? `${title}: ${inc.values.size} distinct ${spec.field ?? 'values'} over ${span} (${inc.records} records)`
    : cls !== NETWORK
      ? `${title}: ${inc.records} matching event${inc.records === 1 ? '' : 's'} on ${hostLabel} over ${span}`
      : `${title}: ${portCount} port${portCount === 1 ? '' : 's'} probed on ${inc.hosts.size} host${inc.hosts.size === 1 ? '' : 's'} by ${inc.sources.size} source${inc.sources.size === 1 ? '' : 's'} over ${span} (${inc.records} records)`
  const evidences = evs.map((e, i) => evidence(e, i < inc.evFirst.length ? (i === 0 ? 'first' : 'early') : 'latest'))
  const observables: Array<{ name: string, type_id: number, type: string, value: string }> = []
  if (primaryHost !== undefined) {
    observables.push({ name: 'device.uid', type_id: OBSERVABLE_TYPE.DEVICE_UID, type: 'Device: Unique ID', value: primaryHost })
    if (primary?.hostname !== undefined) observables.push({ name: 'device.hostname', type_id: OBSERVABLE_TYPE.HOSTNAME, type: 'Hostname', value: primary.hostname })
  }
  // An observable names where its value is: a source is one only when the
  // kept evidence sample shows it (the rest are counted in the message).
  for (const ip of new Set(evs.map(e => e.sip))) {
    if (ip !== undefined) observables.push({ name: 'evidences.src_endpoint.ip', type_id: OBSERVABLE_TYPE.IP_ADDRESS, type: 'IP Address', value: ip })
  }

  const finding: DetectionFinding = {
    class_uid: CLASS.DETECTION_FINDING.uid,
    class_name: CLASS.DETECTION_FINDING.name,
    category_uid: CATEGORY.FINDINGS.uid,
    category_name: CATEGORY.FINDINGS.name,
    activity_id: actId,
    activity_name: FINDING_ACTIVITY_NAME[actId],
    type_uid: typeUid(CLASS.DETECTION_FINDING.uid, actId),
    type_name: `${CLASS.DETECTION_FINDING.name}: ${FINDING_ACTIVITY_NAME[actId]}`,
    severity_id: spec.severityId,
    severity: SEVERITY_NAME[spec.severityId],
    status_id: FINDING_STATUS.NEW,
    status: 'New',
    time: nowWall,
    start_time: inc.firstSeen,
    end_time: inc.lastSeen,
    count: inc.records,
    message,
    metadata: {
      version: OCSF_VERSION,
      product: { name: PRODUCT.name, vendor_name: PRODUCT.vendor_name, version: productVersion },
      uid: randomUUID(),
      correlation_uid: inc.id,
      log_name: 'picket.findings',
      logged_time: nowWall,
    },
    finding_info: {
      uid: inc.id,
      title,
      ...(spec.description !== undefined ? { desc: spec.description.trim() } : {}),
      types: spec.findingTypes,
      created_time: inc.createdWall,
      modified_time: nowWall,
      first_seen_time: inc.firstSeen,
      last_seen_time: inc.lastSeen,
      attacks: spec.attacks,
      analytic: { uid: spec.id ?? spec.ref, name: spec.name ?? spec.title, type_id: ANALYTIC_TYPE.RULE, type: 'Rule', desc: spec.title },
      data_sources: [CLASS_SOURCE[cls] ?? 'network_activity'],
    },
    evidences,
    observables,
    unmapped: {
      picket: {
        rule: { ref: spec.ref, title: spec.title, type: spec.type, stage: spec.stage, file: spec.loc.file, line: spec.loc.line },
        condition: { field: spec.field, gte: spec.min, timespan_ms: spec.timespanMs, group_by: spec.groupBy, ...(spec.sources !== undefined ? { sources_gte: spec.sources.min } : {}) },
        group: inc.groupValues,
        state: 'open',
        records_total: inc.records,
        // the counted values themselves when they are not ports: a DNS
        // finding's sample of the queries
        ...(!portField && inc.values.size > 0 ? { values: statList(inc.values, 'value').slice(0, VALUE_SAMPLE), values_total: inc.values.size } : {}),
        ports: statList(inc.ports.list(), 'port'),
        ports_total: portCount,
        ...(inc.ports.invalid > 0 ? { invalid_ports: inc.ports.invalid } : {}),
        sources: statList(inc.sources, 'ip'),
        sources_total: inc.sources.size,
        hosts: [...inc.hosts.entries()].slice(0, LIST_CAP).map(([uid, h]) => ({ uid, ...(h.hostname !== undefined ? { hostname: h.hostname } : {}), count: h.count, first_seen_time: h.first, last_seen_time: h.last })),
        hosts_total: inc.hosts.size,
        ...(inc.overflow > 0 ? { untracked: inc.overflow } : {}),
      },
    },
  }
  Object.assign(finding, { is_alert: true })
  if (primaryHost !== undefined) {
    finding.device = { type_id: 0, type: 'Unknown', uid: primaryHost, ...(primary?.hostname !== undefined ? { hostname: primary.hostname } : {}) }
  }
  const summary: FindingSummary = {
    id: inc.id,
    rule: spec.ref,
    ruleName: spec.title,
    title,
    technique: attack?.technique.uid ?? '',
    tactic: attack?.tactic?.uid ?? '',
    severityId: spec.severityId,
    hostId: primaryHost,
    hosts: hostIds.slice(0, LIST_CAP),
    hostsTotal: hostIds.length,
    sources: sources.slice(0, LIST_CAP),
    sourcesTotal: sources.length,
    portCount,
    firstSeen: inc.firstSeen,
    lastSeen: inc.lastSeen,
    records: inc.records,
  }
  return { activity, finding: activity === 'close' ? closedFinding(finding, nowWall, closedBy) : finding, summary, crossRecvAt: activity === 'create' ? inc.crossRecvAt : undefined }
}

/**
 * The Close of an incident: its latest finding, closed at `nowWall`. No
 * longer an alert; `closedBy` says why, when something other than the
 * incident going quiet closed it (the store closes what a previous run
 * left open).
 */
export function closedFinding (finding: DetectionFinding, nowWall: number, closedBy?: string): DetectionFinding {
  const { is_alert: _wasAlert, ...rest } = finding as DetectionFinding & { is_alert?: boolean }
  const actId = FINDING_ACTIVITY.CLOSE
  return {
    ...rest,
    activity_id: actId,
    activity_name: FINDING_ACTIVITY_NAME[actId],
    type_uid: typeUid(CLASS.DETECTION_FINDING.uid, actId),
    type_name: `${CLASS.DETECTION_FINDING.name}: ${FINDING_ACTIVITY_NAME[actId]}`,
    time: nowWall,
    metadata: { ...rest.metadata, logged_time: nowWall },
    finding_info: { ...rest.finding_info, modified_time: nowWall },
    unmapped: {
      ...rest.unmapped,
      picket: { ...(rest.unmapped?.picket as Record<string, unknown> | undefined), state: 'closed', ...(closedBy !== undefined ? { closed_by: closedBy } : {}) },
    },
  }
}
