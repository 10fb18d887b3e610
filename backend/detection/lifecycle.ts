import type { Actor } from './actors.js'
import { BudgetNode, BYTES, type NodeOwner, type StateBudget } from './budget.js'
import { countAt, evidenceAt, portAt, sourceAt, type Key } from './cells.js'
import { buildFinding, type FindingActivity, type FindingEvent } from './finding.js'
import type { Ev, Incident } from './incident.js'
import type { Cols } from './projector.js'
import type { EngineStats } from './protocol.js'

// The host stage's open incidents, from the crossing to the close: open
// (a Create finding), observe (every matching record while it lasts),
// update (at most every updateIntervalMs while it grows), close (after a
// quiet period, by wall time or by the host's own clock) and release (the
// correlation drops the group, so the next crossing is a new incident). An
// open incident is a node of the worker's memory budget, charged its own
// bytes and its group's; when the budget evicts it, it closes early, and its
// Close says so.

/** closed_by of an incident the memory budget closed */
export const BUDGET_CLOSER = 'detection memory budget (--detection-memory)'

/** What holds an incident's group; told to let it go when the incident closes. */
export interface IncidentOwner {
  release: (actor: Actor, key: Key) => void
}

export class OpenIncident extends BudgetNode {
  readonly inc: Incident
  readonly actor: Actor
  readonly owner: IncidentOwner
  readonly key: Key
  constructor (inc: Incident, actor: Actor, owner: IncidentOwner, key: Key) { super(); this.inc = inc; this.actor = actor; this.owner = owner; this.key = key }
}

/** What an open incident is charged: itself and the group that holds it. */
function incidentBytes (inc: Incident): number {
  return inc.bytes + BYTES.group
}

export class IncidentLifecycle implements NodeOwner {
  readonly evictKind = 'incident'
  readonly #open = new Set<OpenIncident>()
  readonly #productVersion: string
  readonly #stats: EngineStats
  readonly #budget: StateBudget
  #findings: FindingEvent[] = []

  constructor (productVersion: string, stats: EngineStats, budget: StateBudget) {
    this.#productVersion = productVersion
    this.#stats = stats
    this.#budget = budget
  }

  /** `inc` crossed its threshold with evidence `evs`: emit Create. */
  open (actor: Actor, owner: IncidentOwner, key: Key, inc: Incident, evs: Ev[], nowWall: number): OpenIncident {
    for (const e of evs) inc.evidence(e)
    const oi = new OpenIncident(inc, actor, owner, key)
    this.#open.add(oi)
    this.#budget.link(oi, this, incidentBytes(inc), nowWall)
    this.#stats.openIncidents = this.#open.size
    this.#emit(inc, 'create', nowWall)
    return oi
  }

  /** Count the row at `b` (counted value `value`, event time `t`) into an open incident. */
  observe (oi: OpenIncident, value: Key | undefined, c: Cols, b: number, t: number, nowWall: number): void {
    const a = oi.actor
    const inc = oi.inc
    inc.observe(value, portAt(c, b), sourceAt(c, b), a.hostId, a.hostname, t, countAt(c, b), nowWall)
    inc.evidence(evidenceAt(a, c, b, t))
    const grew = incidentBytes(inc) - oi.bytes
    if (grew !== 0) this.#budget.resize(oi, grew)
    this.#budget.touch(oi, nowWall)
  }

  /** The budget needs the room: close the incident now, saying why. */
  evict (node: BudgetNode, nowWall: number): void {
    const oi = node as OpenIncident
    this.#close(oi, nowWall, BUDGET_CLOSER)
    this.#stats.openIncidents = this.#open.size
  }

  #close (oi: OpenIncident, nowWall: number, closedBy?: string): void {
    this.#emit(oi.inc, 'close', nowWall, closedBy)
    this.#open.delete(oi)
    this.#budget.unlink(oi)
    oi.owner.release(oi.actor, oi.key)
  }

  /** Close the quiet incidents, update the grown ones. */
  tick (nowWall: number): void {
    for (const oi of this.#open) {
      const inc = oi.inc
      const spec = inc.spec
      if (nowWall - inc.lastWall >= spec.quietMs || oi.actor.clock - inc.lastSeen >= spec.quietMs) {
        this.#close(oi, nowWall)
      } else if (inc.dirty && nowWall - inc.lastEmitWall >= spec.updateIntervalMs) {
        this.#emit(inc, 'update', nowWall)
      }
    }
    this.#stats.openIncidents = this.#open.size
  }

  /** Update every grown incident now, whatever its interval. */
  flush (nowWall: number): void {
    for (const oi of this.#open) if (oi.inc.dirty) this.#emit(oi.inc, 'update', nowWall)
  }

  /** Findings emitted since the last call. */
  drain (): FindingEvent[] {
    const out = this.#findings
    this.#findings = []
    return out
  }

  #emit (inc: Incident, activity: FindingActivity, nowWall: number, closedBy?: string): void {
    this.#findings.push(buildFinding(inc, activity, nowWall, this.#productVersion, closedBy))
    inc.lastEmitWall = nowWall
    inc.dirty = false
    inc.emitted = true
    this.#stats.findings++
  }
}
