import type { Actor } from './actors.js'
import { evidenceAt, portAt, sourceAt, type Key } from './cells.js'
import { buildFinding, type FindingActivity, type FindingEvent } from './finding.js'
import type { Ev, Incident } from './incident.js'
import type { Cols } from './projector.js'
import type { EngineStats } from './protocol.js'

// The host stage's open incidents, from the crossing to the close: open
// (a Create finding), observe (every matching record while it lasts),
// update (at most every updateIntervalMs while it grows), close (after a
// quiet period, by wall time or by the host's own clock) and release (the
// correlation drops the group, so the next crossing is a new incident).

/** What holds an incident's group; told to let it go when the incident closes. */
export interface IncidentOwner {
  release: (actor: Actor, key: Key) => void
}

export interface OpenIncident {
  inc: Incident
  actor: Actor
  owner: IncidentOwner
  key: Key
}

export class IncidentLifecycle {
  readonly #open = new Set<OpenIncident>()
  readonly #productVersion: string
  readonly #stats: EngineStats
  #findings: FindingEvent[] = []

  constructor (productVersion: string, stats: EngineStats) {
    this.#productVersion = productVersion
    this.#stats = stats
  }

  /** `inc` crossed its threshold with evidence `evs`: emit Create. */
  open (actor: Actor, owner: IncidentOwner, key: Key, inc: Incident, evs: Ev[], nowWall: number): OpenIncident {
    for (const e of evs) inc.evidence(e)
    const oi: OpenIncident = { inc, actor, owner, key }
    this.#open.add(oi)
    this.#stats.openIncidents = this.#open.size
    this.#emit(inc, 'create', nowWall)
    return oi
  }

  /** Count the row at `b` (counted value `value`, event time `t`) into an open incident. */
  observe (oi: OpenIncident, value: Key | undefined, c: Cols, b: number, t: number, nowWall: number): void {
    const a = oi.actor
    oi.inc.observe(value, portAt(c, b), sourceAt(c, b), a.hostId, a.hostname, t, 1, nowWall)
    oi.inc.evidence(evidenceAt(a, c, b, t))
  }

  /** Close the quiet incidents, update the grown ones. */
  tick (nowWall: number): void {
    for (const oi of this.#open) {
      const inc = oi.inc
      const spec = inc.spec
      if (nowWall - inc.lastWall >= spec.quietMs || oi.actor.clock - inc.lastSeen >= spec.quietMs) {
        this.#emit(inc, 'close', nowWall)
        this.#open.delete(oi)
        oi.owner.release(oi.actor, oi.key)
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

  #emit (inc: Incident, activity: FindingActivity, nowWall: number): void {
    this.#findings.push(buildFinding(inc, activity, nowWall, this.#productVersion))
    inc.lastEmitWall = nowWall
    inc.dirty = false
    inc.emitted = true
    this.#stats.findings++
  }
}
