import { randomUUID } from 'node:crypto'
import type { CorrelationSpec } from './rules/compile.js'

// One incident = one finding. It is created when a correlation crosses its
// threshold, accumulates what the scan touches while it goes on, is emitted
// as Update at most every updateIntervalMs, and closes after a quiet period.

/** One evidence record, reduced to the fields that replay the decision. */
export interface Ev {
  t: number
  host: string
  hostname: string | undefined
  sip: string | undefined
  sport: number
  dip: string | undefined
  dport: number
  act: number
  proto: number
  dir: number
}

export interface ValStat { first: number, last: number, count: number }
export interface HostStat extends ValStat { hostname: string | undefined }

export const EVIDENCE_FIRST = 10
export const EVIDENCE_LAST = 10

export function copyEv (e: Ev): Ev {
  return { t: e.t, host: e.host, hostname: e.hostname, sip: e.sip, sport: e.sport, dip: e.dip, dport: e.dport, act: e.act, proto: e.proto, dir: e.dir }
}

function bump<K> (m: Map<K, ValStat>, k: K, t: number, n: number): boolean {
  const s = m.get(k)
  if (s === undefined) { m.set(k, { first: t, last: t, count: n }); return true }
  s.count += n
  if (t > s.last) s.last = t
  if (t < s.first) s.first = t
  return false
}

function merge<K> (m: Map<K, ValStat>, k: K, s: ValStat): void {
  const x = m.get(k)
  if (x === undefined) { m.set(k, { first: s.first, last: s.last, count: s.count }); return }
  x.count += s.count
  if (s.first < x.first) x.first = s.first
  if (s.last > x.last) x.last = s.last
}

export class Incident {
  readonly id: string = randomUUID()
  readonly spec: CorrelationSpec
  readonly key: string
  readonly groupValues: Record<string, string | number>
  /** the distinct values of the correlation's field (ports for a port scan) */
  readonly values = new Map<string | number, ValStat>()
  readonly ports = new Map<number, ValStat>()
  readonly sources = new Map<string, ValStat>()
  readonly hosts = new Map<string, HostStat>()
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

  constructor (spec: CorrelationSpec, key: string, groupValues: Record<string, string | number>, nowWall: number, recvAt: number) {
    this.spec = spec
    this.key = key
    this.groupValues = groupValues
    this.createdWall = nowWall
    this.lastWall = nowWall
    this.crossRecvAt = recvAt
  }

  /** Count `n` records seen at event time `t`. */
  observe (value: string | number | undefined, port: number, src: string | undefined, host: string, hostname: string | undefined, t: number, n: number, wall: number): void {
    this.records += n
    if (t < this.firstSeen) this.firstSeen = t
    if (t > this.lastSeen) this.lastSeen = t
    if (wall > this.lastWall) this.lastWall = wall
    if (value !== undefined) bump(this.values, value, t, n)
    if (port >= 0 && (this.spec.field !== 'dst_endpoint.port' || value === undefined)) bump(this.ports, port, t, n)
    if (src !== undefined) bump(this.sources, src, t, n)
    let h = this.hosts.get(host)
    if (h === undefined) { h = { first: t, last: t, count: 0, hostname }; this.hosts.set(host, h) }
    h.count += n
    if (t > h.last) h.last = t
    if (t < h.first) h.first = t
    if (hostname !== undefined) h.hostname = hostname
    this.dirty = true
  }

  /** Fold in a window's worth of counts for one value at crossing time. */
  seed (value: string | number, s: ValStat, port: number, src: string | undefined, host: string, hostname: string | undefined): void {
    this.records += s.count
    if (s.first < this.firstSeen) this.firstSeen = s.first
    if (s.last > this.lastSeen) this.lastSeen = s.last
    merge(this.values, value, s)
    if (port >= 0 && this.spec.field !== 'dst_endpoint.port') merge(this.ports, port, s)
    if (src !== undefined) merge(this.sources, src, s)
    const h = this.hosts.get(host)
    if (h === undefined) this.hosts.set(host, { first: s.first, last: s.last, count: s.count, hostname })
    else merge(this.hosts, host, s)
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

  /** Port stats: the counted values themselves when the rule counts ports. */
  portStats (): Map<number, ValStat> {
    return this.spec.field === 'dst_endpoint.port' && this.values.size > 0 ? this.values as Map<number, ValStat> : this.ports
  }
}
