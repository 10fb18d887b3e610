import { createHash } from 'node:crypto'
import { BYTES } from './budget.js'
import { PortSet } from './port-set.js'
import type { CorrelationSpec } from './rules/compile.js'

const PORT_FIELD = 'dst_endpoint.port'

// One incident = one finding. It is created when a correlation crosses its
// threshold, accumulates what the scan touches while it goes on, is emitted
// as Update at most every updateIntervalMs, and closes after a quiet period.

/** One evidence record, reduced to the fields that replay the decision and show what the record said. */
export interface Ev {
  /** event time as the windows count it (a time too far ahead is the arrival time) */
  t: number
  /** the record's own time, NaN when it has none */
  rt: number
  host: string
  hostname: string | undefined
  /** device.type_id, -1 when absent */
  dtype: number
  sip: string | undefined
  sport: number
  dip: string | undefined
  dport: number
  act: number
  /** class_uid */
  cls: number
  proto: number
  dir: number
  /** dns_activity: query.hostname */
  qname: string | undefined
}

export interface ValStat { first: number, last: number, count: number }
export interface HostStat extends ValStat { hostname: string | undefined }

export const EVIDENCE_FIRST = 10
export const EVIDENCE_LAST = 10

export function copyEv (e: Ev): Ev {
  return { t: e.t, rt: e.rt, host: e.host, hostname: e.hostname, dtype: e.dtype, sip: e.sip, sport: e.sport, dip: e.dip, dport: e.dport, act: e.act, cls: e.cls, proto: e.proto, dir: e.dir, qname: e.qname }
}

/** Distinct keys an incident tracks per map (values, sources, hosts); past it, sightings of new keys are counted, not kept. */
export const INCIDENT_MAX_KEYS = 10_000

/** Count `n` sightings of `k` at `t`; false when `k` is new and `m` is full (the caller counts it). */
function bump<K> (m: Map<K, ValStat>, k: K, t: number, n: number): boolean {
  const s = m.get(k)
  if (s === undefined) {
    if (m.size >= INCIDENT_MAX_KEYS) return false
    m.set(k, { first: t, last: t, count: n })
    return true
  }
  s.count += n
  if (t > s.last) s.last = t
  if (t < s.first) s.first = t
  return true
}

function merge<K> (m: Map<K, ValStat>, k: K, s: ValStat): boolean {
  const x = m.get(k)
  if (x === undefined) {
    if (m.size >= INCIDENT_MAX_KEYS) return false
    m.set(k, { first: s.first, last: s.last, count: s.count })
    return true
  }
  x.count += s.count
  if (s.first < x.first) x.first = s.first
  if (s.last > x.last) x.last = s.last
  return true
}

/**
 * An incident's id, from what defines it: the rule, the group (host and
 * grouped values) and the event time of the first record in the window that
 * crossed. A detection node that takes a partition over and replays it
 * crosses on the same records, so it names the same finding instead of a
 * second one. UUID-shaped (version 8: custom) for the OCSF uid fields.
 */
export function incidentId (rule: string, key: string, firstSeen: number): string {
  const h = createHash('sha256').update(`${rule}\u0000${key}\u0000${firstSeen}`).digest('hex')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${((parseInt(h[16], 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

export class Incident {
  #id: string | undefined
  readonly spec: CorrelationSpec
  readonly key: string
  readonly groupValues: Record<string, string | number>
  /** the distinct values of the correlation's field, when it is not the port (ports go to `ports`) */
  readonly values = new Map<string | number, ValStat>()
  /** the distinct destination ports: the counted values when the rule counts ports */
  readonly ports = new PortSet()
  readonly sources = new Map<string, ValStat>()
  readonly hosts = new Map<string, HostStat>()
  /** sightings of a new value, source or host after its map held INCIDENT_MAX_KEYS */
  overflow = 0
  records = 0
  firstSeen = Infinity
  lastSeen = -Infinity
  readonly createdWall: number
  lastWall: number
  lastEmitWall = 0
  dirty = false
  emitted = false
  /** wall time the batch holding the crossing record reached the collector */
  crossRecvAt: number
  readonly evFirst: Ev[] = []
  readonly evLast: Ev[] = []
  #evLastNext = 0
  readonly #portField: boolean

  constructor (spec: CorrelationSpec, key: string, groupValues: Record<string, string | number>, nowWall: number, recvAt: number) {
    this.spec = spec
    this.key = key
    this.groupValues = groupValues
    this.createdWall = nowWall
    this.lastWall = nowWall
    this.crossRecvAt = recvAt
    this.#portField = spec.field === PORT_FIELD
  }

  /** Fixed when first read: at the Create, after the crossing window seeded it. */
  get id (): string {
    this.#id ??= incidentId(this.spec.ref, this.key, this.firstSeen)
    return this.#id
  }

  /** How many distinct values of the rule's field it holds. */
  get distinct (): number {
    return this.#portField ? this.ports.count : this.values.size
  }

  /** Estimated heap bytes (budget.ts): bounded, since every map is. */
  get bytes (): number {
    return BYTES.incident + (this.values.size + this.sources.size + this.hosts.size) * (BYTES.entry + BYTES.valStat) + this.ports.bytes
  }

  /** Count `n` records seen at event time `t`. */
  observe (value: string | number | undefined, port: number, src: string | undefined, host: string, hostname: string | undefined, t: number, n: number, wall: number): void {
    this.records += n
    if (t < this.firstSeen) this.firstSeen = t
    if (t > this.lastSeen) this.lastSeen = t
    if (wall > this.lastWall) this.lastWall = wall
    if (this.#portField) this.ports.add(value ?? port, t, n)
    else {
      if (value !== undefined && !bump(this.values, value, t, n)) this.overflow++
      if (port >= 0) this.ports.add(port, t, n)
    }
    if (src !== undefined && !bump(this.sources, src, t, n)) this.overflow++
    let h = this.hosts.get(host)
    if (h === undefined) {
      if (this.hosts.size < INCIDENT_MAX_KEYS) { h = { first: t, last: t, count: 0, hostname }; this.hosts.set(host, h) } else this.overflow++
    }
    if (h !== undefined) {
      h.count += n
      if (t > h.last) h.last = t
      if (t < h.first) h.first = t
      if (hostname !== undefined) h.hostname = hostname
    }
    this.dirty = true
  }

  /** Fold in a window's worth of counts for one value at crossing time. */
  seed (value: string | number, s: ValStat, port: number, src: string | undefined, host: string, hostname: string | undefined): void {
    this.records += s.count
    if (s.first < this.firstSeen) this.firstSeen = s.first
    if (s.last > this.lastSeen) this.lastSeen = s.last
    if (this.#portField) this.ports.merge(value, s)
    else {
      if (!merge(this.values, value, s)) this.overflow++
      if (port >= 0) this.ports.merge(port, s)
    }
    if (src !== undefined && !merge(this.sources, src, s)) this.overflow++
    const h = this.hosts.get(host)
    if (h === undefined) {
      if (this.hosts.size < INCIDENT_MAX_KEYS) this.hosts.set(host, { first: s.first, last: s.last, count: s.count, hostname })
      else this.overflow++
    } else merge(this.hosts, host, s)
    this.dirty = true
  }

  evidence (e: Ev): void {
    if (this.evFirst.length < EVIDENCE_FIRST) { this.evFirst.push(copyEv(e)); return }
    if (this.evLast.length < EVIDENCE_LAST) { this.evLast.push(copyEv(e)); return }
    Object.assign(this.evLast[this.#evLastNext], e)
    this.#evLastNext = (this.#evLastNext + 1) % EVIDENCE_LAST
  }

  /** Evidence in time order: the first records, then the latest ones. */
  evidenceList (): Ev[] {
    const last = [...this.evLast.slice(this.#evLastNext), ...this.evLast.slice(0, this.#evLastNext)]
    return [...this.evFirst, ...last]
  }
}
