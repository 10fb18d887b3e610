import type { FleetDelta } from './protocol.js'
import { buildFinding, type FindingEvent } from './finding.js'
import { EVIDENCE_FIRST, Incident, type Ev, type ValStat } from './incident.js'
import type { CorrelationSpec, RuleSet } from './rules/compile.js'

// The fleet stage: correlations whose group-by leaves out device.uid, so one
// group spans hosts that live on different workers. Workers do not forward
// records here, only (group, value) sightings: a new sighting at once, a
// refresh of a known one at most once a second. Its cost follows the number
// of distinct (source, port, host) triples, not the record rate. It runs on
// the main thread, which sees every worker's output.

type Key = string | number

interface Group {
  vals: Key[]
  values: Map<Key, ValStat>
  last: number
  lastWall: number
  evs: Ev[]
  open: OpenFleet | undefined
}

interface OpenFleet {
  inc: Incident
  incKey: string
  groups: Set<string>
}

interface RuleState {
  spec: CorrelationSpec
  groups: Map<string, Group>
  open: Map<string, OpenFleet>
  incIdx: number[]
  portIdx: number
  srcIdx: number
}

export interface FleetStats { groups: number, openIncidents: number, deltas: number, findings: number }

export class FleetStage {
  readonly #rules: Array<RuleState | undefined>
  readonly #version: string
  #out: FindingEvent[] = []
  #clock = -Infinity
  #lastGc = 0
  readonly stats: FleetStats = { groups: 0, openIncidents: 0, deltas: 0, findings: 0 }

  constructor (rules: RuleSet, productVersion: string) {
    this.#version = productVersion
    this.#rules = rules.correlations.map(spec => spec.stage !== 'fleet'
      ? undefined
      : {
          spec,
          groups: new Map(),
          open: new Map(),
          incIdx: spec.incidentBy.map(f => spec.groupBy.indexOf(f)),
          portIdx: spec.groupBy.indexOf('dst_endpoint.port'),
          srcIdx: spec.groupBy.indexOf('src_endpoint.ip'),
        })
  }

  get active (): boolean {
    return this.#rules.some(r => r !== undefined)
  }

  apply (deltas: readonly FleetDelta[], nowWall: number): void {
    for (const d of deltas) {
      const rs = this.#rules[d.rule]
      if (rs === undefined) continue
      this.stats.deltas++
      if (d.last > this.#clock) this.#clock = d.last
      const key = d.group.join('\u0001')
      let g = rs.groups.get(key)
      if (g === undefined) {
        g = { vals: d.group, values: new Map(), last: -Infinity, lastWall: nowWall, evs: [], open: undefined }
        rs.groups.set(key, g)
      }
      g.lastWall = nowWall
      if (d.last > g.last) g.last = d.last
      const port = rs.portIdx >= 0 && typeof d.group[rs.portIdx] === 'number' ? d.group[rs.portIdx] as number : (d.ev?.dport ?? -1)
      const src = rs.srcIdx >= 0 ? String(d.group[rs.srcIdx]) : d.ev?.sip
      if (g.open !== undefined) {
        const host = rs.spec.field === 'device.uid' ? String(d.value) : d.host
        g.open.inc.seed(d.value, { first: d.first, last: d.last, count: d.count }, port, src, host, d.hostname)
        g.open.inc.lastWall = nowWall
        if (d.ev !== undefined) g.open.inc.evidence(d.ev)
        continue
      }
      const s = g.values.get(d.value)
      if (s !== undefined) {
        s.count += d.count
        if (d.last > s.last) s.last = d.last
        if (d.first < s.first) s.first = d.first
        continue
      }
      if (d.last < g.last - rs.spec.timespanMs) continue
      g.values.set(d.value, { first: d.first, last: d.last, count: d.count })
      if (d.ev !== undefined && g.evs.length < EVIDENCE_FIRST) g.evs.push(d.ev)
      if (g.values.size >= rs.spec.min) this.#check(rs, key, g, port, src, d, nowWall)
    }
  }

  #check (rs: RuleState, key: string, g: Group, port: number, src: string | undefined, d: FleetDelta, nowWall: number): void {
    const cutoff = g.last - rs.spec.timespanMs
    for (const [v, s] of g.values) if (s.last < cutoff) g.values.delete(v)
    if (g.values.size < rs.spec.min) return
    const incKey = rs.incIdx.map(i => String(g.vals[i])).join('\u0001')
    let of = rs.open.get(incKey)
    const fresh = of === undefined
    if (of === undefined) {
      const groupValues: Record<string, Key> = {}
      for (const f of rs.spec.incidentBy) groupValues[f] = g.vals[rs.spec.groupBy.indexOf(f)]
      of = { inc: new Incident(rs.spec, incKey, groupValues, nowWall, d.recvAt), incKey, groups: new Set() }
      rs.open.set(incKey, of)
    }
    of.groups.add(key)
    g.open = of
    const hostIsValue = rs.spec.field === 'device.uid'
    const hostnames = new Map(g.evs.map(e => [e.host, e.hostname]))
    for (const [v, s] of g.values) {
      const host = hostIsValue ? String(v) : d.host
      of.inc.seed(v, s, port, src, host, hostnames.get(host) ?? (host === d.host ? d.hostname : undefined))
    }
    for (const e of g.evs) if (e.t >= cutoff) of.inc.evidence(e)
    g.values.clear()
    g.evs.length = 0
    if (fresh) this.#emit(of.inc, 'create', nowWall)
  }

  #emit (inc: Incident, activity: 'create' | 'update' | 'close', nowWall: number): void {
    this.#out.push(buildFinding(inc, activity, nowWall, this.#version))
    inc.lastEmitWall = nowWall
    inc.dirty = false
    this.stats.findings++
  }

  tick (nowWall: number): void {
    let open = 0
    let groups = 0
    for (const rs of this.#rules) {
      if (rs === undefined) continue
      const spec = rs.spec
      for (const [k, of] of rs.open) {
        const inc = of.inc
        if (nowWall - inc.lastWall >= spec.quietMs || this.#clock - inc.lastSeen >= spec.quietMs) {
          this.#emit(inc, 'close', nowWall)
          rs.open.delete(k)
          for (const gk of of.groups) rs.groups.delete(gk)
        } else if (inc.dirty && nowWall - inc.lastEmitWall >= spec.updateIntervalMs) {
          this.#emit(inc, 'update', nowWall)
        }
      }
      if (nowWall - this.#lastGc >= 1000) {
        const cutoff = this.#clock - spec.timespanMs
        for (const [k, g] of rs.groups) {
          if (g.open === undefined && (g.last < cutoff || nowWall - g.lastWall > spec.timespanMs)) rs.groups.delete(k)
        }
      }
      open += rs.open.size
      groups += rs.groups.size
    }
    if (nowWall - this.#lastGc >= 1000) this.#lastGc = nowWall
    this.stats.openIncidents = open
    this.stats.groups = groups
  }

  /** Emit pending updates now (tests, shutdown). */
  flush (nowWall: number): void {
    for (const rs of this.#rules) {
      if (rs === undefined) continue
      for (const of of rs.open.values()) if (of.inc.dirty) this.#emit(of.inc, 'update', nowWall)
    }
  }

  drain (): FindingEvent[] {
    const out = this.#out
    this.#out = []
    return out
  }
}
