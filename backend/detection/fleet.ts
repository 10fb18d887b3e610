import { BudgetNode, BYTES, DEFAULT_DETECTION_MEMORY, StateBudget, strBytes, type NodeOwner, type StateEvictions } from './budget.js'
import { buildFinding, type FindingEvent } from './finding.js'
import { EVIDENCE_FIRST, Incident, type Ev, type ValStat } from './incident.js'
import { BUDGET_CLOSER } from './lifecycle.js'
import type { FleetDelta } from './protocol.js'
import type { CorrelationSpec, RuleSet } from './rules/compile.js'

// The fleet stage: correlations whose group-by leaves out device.uid, so one
// group spans hosts that live on different workers. Workers do not forward
// records here, only (group, value) sightings: a new sighting at once, a
// refresh of a known one at most once a second. Its cost follows the number
// of distinct (source, port, host) triples, not the record rate, and it is
// bounded like a worker's: its groups and open incidents sit under a memory
// budget of their own (budget.ts), least recently active evicted first. It
// runs on the main thread, which sees every worker's output.

type Key = string | number

const VALUE_BYTES = BYTES.entry + BYTES.valStat

class Group extends BudgetNode {
  readonly rs: RuleState
  readonly key: string
  readonly vals: Key[]
  readonly values = new Map<Key, ValStat>()
  last = -Infinity
  lastWall: number
  readonly evs: Ev[] = []
  open: OpenFleet | undefined = undefined
  constructor (rs: RuleState, key: string, vals: Key[], nowWall: number) { super(); this.rs = rs; this.key = key; this.vals = vals; this.lastWall = nowWall }
}

class OpenFleet extends BudgetNode {
  readonly rs: RuleState
  readonly inc: Incident
  readonly incKey: string
  readonly groups = new Set<string>()
  constructor (rs: RuleState, inc: Incident, incKey: string) { super(); this.rs = rs; this.inc = inc; this.incKey = incKey }
}

/** a group, its key, its group-by values (cloned from the worker's delta), its values and evidence */
function groupBytes (g: Group): number {
  let n = BYTES.group + strBytes(g.key) + BYTES.entry + g.values.size * VALUE_BYTES + g.evs.length * BYTES.clonedEvidence
  for (const v of g.vals) n += strBytes(v)
  return n
}

function openBytes (of: OpenFleet): number {
  return of.inc.bytes + of.groups.size * BYTES.entry
}

interface RuleState {
  spec: CorrelationSpec
  groups: Map<string, Group>
  open: Map<string, OpenFleet>
  incIdx: number[]
  portIdx: number
  srcIdx: number
}

export interface FleetStats {
  groups: number
  openIncidents: number
  deltas: number
  findings: number
  /** estimated bytes of the stage's state, and its budget */
  stateBytes: number
  budgetBytes: number
  /** state the budget evicted, by kind (cumulative) */
  evictions: StateEvictions
}

export class FleetStage {
  readonly #rules: Array<RuleState | undefined>
  readonly #version: string
  readonly #budget: StateBudget
  readonly #groupOwner: NodeOwner = { evictKind: 'fleet_group', evict: (n) => this.#dropGroup(n as Group) }
  readonly #openOwner: NodeOwner = { evictKind: 'fleet_incident', evict: (n, nowWall) => this.#close(n as OpenFleet, nowWall, BUDGET_CLOSER) }
  #out: FindingEvent[] = []
  #clock = -Infinity
  #lastGc = 0
  readonly stats: FleetStats

  constructor (rules: RuleSet, productVersion: string, memoryBytes = DEFAULT_DETECTION_MEMORY) {
    this.#version = productVersion
    this.#budget = new StateBudget(memoryBytes)
    this.stats = { groups: 0, openIncidents: 0, deltas: 0, findings: 0, stateBytes: 0, budgetBytes: memoryBytes, evictions: this.#budget.evictions }
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
    const budget = this.#budget
    for (const d of deltas) {
      const rs = this.#rules[d.rule]
      if (rs === undefined) continue
      this.stats.deltas++
      if (d.last > this.#clock) this.#clock = d.last
      const key = d.group.join('\u0001')
      let g = rs.groups.get(key)
      if (g === undefined) {
        g = new Group(rs, key, d.group, nowWall)
        rs.groups.set(key, g)
        budget.link(g, this.#groupOwner, groupBytes(g), nowWall)
      } else budget.touch(g, nowWall)
      g.lastWall = nowWall
      if (d.last > g.last) g.last = d.last
      const port = rs.portIdx >= 0 && typeof d.group[rs.portIdx] === 'number' ? d.group[rs.portIdx] as number : (d.ev?.dport ?? -1)
      const src = rs.srcIdx >= 0 ? String(d.group[rs.srcIdx]) : d.ev?.sip
      const of = g.open
      if (of !== undefined) {
        const host = rs.spec.field === 'device.uid' ? String(d.value) : d.host
        of.inc.seed(d.value, { first: d.first, last: d.last, count: d.count }, port, src, host, d.hostname)
        of.inc.lastWall = nowWall
        if (d.ev !== undefined) of.inc.evidence(d.ev)
        this.#resized(of)
        budget.touch(of, nowWall)
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
      budget.resize(g, groupBytes(g) - g.bytes)
    }
    budget.enforce(nowWall)
    this.stats.stateBytes = budget.bytes
  }

  #resized (of: OpenFleet): void {
    this.#budget.resize(of, openBytes(of) - of.bytes)
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
      of = new OpenFleet(rs, new Incident(rs.spec, incKey, groupValues, nowWall, d.recvAt), incKey)
      rs.open.set(incKey, of)
      this.#budget.link(of, this.#openOwner, openBytes(of), nowWall)
    } else this.#budget.touch(of, nowWall)
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
    this.#resized(of)
    if (fresh) this.#emit(of.inc, 'create', nowWall)
  }

  /** Close an incident (quiet, or evicted: `closedBy` says so) and drop its groups. */
  #close (of: OpenFleet, nowWall: number, closedBy?: string): void {
    const rs = of.rs
    this.#emit(of.inc, 'close', nowWall, closedBy)
    rs.open.delete(of.incKey)
    this.#budget.unlink(of)
    for (const gk of of.groups) {
      const g = rs.groups.get(gk)
      if (g !== undefined) this.#dropGroup(g)
    }
  }

  #dropGroup (g: Group): void {
    const rs = g.rs
    if (rs.groups.get(g.key) === g) rs.groups.delete(g.key)
    this.#budget.unlink(g)
    const of = g.open
    if (of !== undefined && of.groups.delete(g.key)) this.#resized(of)
  }

  #emit (inc: Incident, activity: 'create' | 'update' | 'close', nowWall: number, closedBy?: string): void {
    this.#out.push(buildFinding(inc, activity, nowWall, this.#version, closedBy))
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
      for (const of of rs.open.values()) {
        const inc = of.inc
        if (nowWall - inc.lastWall >= spec.quietMs || this.#clock - inc.lastSeen >= spec.quietMs) {
          this.#close(of, nowWall)
        } else if (inc.dirty && nowWall - inc.lastEmitWall >= spec.updateIntervalMs) {
          this.#emit(inc, 'update', nowWall)
        }
      }
      if (nowWall - this.#lastGc >= 1000) {
        const cutoff = this.#clock - spec.timespanMs
        for (const g of rs.groups.values()) {
          if (g.open === undefined && (g.last < cutoff || nowWall - g.lastWall > spec.timespanMs)) this.#dropGroup(g)
        }
      }
      open += rs.open.size
      groups += rs.groups.size
    }
    if (nowWall - this.#lastGc >= 1000) this.#lastGc = nowWall
    if (this.#budget.enforce(nowWall) > 0) {
      open = 0
      groups = 0
      for (const rs of this.#rules) { open += rs?.open.size ?? 0; groups += rs?.groups.size ?? 0 }
    }
    this.stats.openIncidents = open
    this.stats.groups = groups
    this.stats.stateBytes = this.#budget.bytes
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
