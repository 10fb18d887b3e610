import { ActorRegistry, type Actor } from './actors.js'
import { admit } from './admission.js'
import { DEFAULT_DETECTION_MEMORY, StateBudget } from './budget.js'
import { cellNum } from './cells.js'
import { applyDerived } from './derived.js'
import type { Correlation, CorrelationContext } from './correlations/correlation.js'
import { Distributed } from './correlations/distributed.js'
import { EventCount } from './correlations/event-count.js'
import { Temporal } from './correlations/temporal.js'
import { FleetLocal, FleetReports } from './correlations/fleet-local.js'
import { ValueCount } from './correlations/value-count.js'
import type { FindingEvent } from './finding.js'
import { IncidentLifecycle } from './lifecycle.js'
import { RecordChecks, RECORD_WINDOW } from './field-checks.js'
import { Projector, type ScanLimits } from './projector.js'
import type { BatchInput, BatchOutcome, EngineStats, FleetDelta, HostSummary } from './protocol.js'
import type { InstanceFloor } from './seq.js'
import { EVIDENCE_SLOT, type DetectionRule, type RuleSet } from './rules/compile.js'

// The host stage of the detection plane. One DetectionEngine per worker
// thread; inside it one actor per host, holding that host's sliding windows.
// A batch is admitted, scanned into columns, and each row a detection rule
// of the row's event class matches is handed to the correlations that
// consume that rule. Everything is driven by the caller's clock (nowWall), so
// the unit tests replay exact timelines. All correlation state, of every host and rule, sits under one
// memory budget (budget.ts), enforced after each batch and each tick.

export interface EngineOptions {
  limits: ScanLimits
  productVersion: string
  /** per host and rule: groups beyond this are not tracked (counted in stateOverflow) */
  maxGroups?: number
  /** re-report a fleet (group, value) pair at most this often */
  fleetRefreshMs?: number
  /** out-of-order seqs remembered per host */
  maxSeqAhead?: number
  /** records stamped further than this in the future are clamped to the arrival time */
  maxClockSkewMs?: number
  /** memory budget of all correlation state, bytes (default 256 MiB) */
  memoryBytes?: number
}

const VALUE_COUNT = 0
const EVENT_COUNT = 1
const DISTRIBUTED = 2
const FLEET_LOCAL = 3
const TEMPORAL = 4

const TIME = EVIDENCE_SLOT.time

export class DetectionEngine {
  readonly rules: RuleSet
  readonly projector: Projector
  readonly stats: EngineStats
  readonly #budget: StateBudget
  readonly #opts: Required<EngineOptions>
  readonly #actors: ActorRegistry
  readonly #incidents: IncidentLifecycle
  readonly #fleet: FleetReports
  readonly #ctx: CorrelationContext
  /** by CorrelationSpec.index, with each one's kind */
  readonly #correlations: Array<Correlation<unknown>>
  readonly #kinds: Uint8Array
  /** per class of ClassRouting (a row's Cols.cls): its detections that feed a correlation */
  readonly #active: DetectionRule[][]
  #lastGc = 0

  constructor (rules: RuleSet, opts: EngineOptions) {
    this.rules = applyDerived(rules)
    this.#opts = { maxGroups: 100_000, fleetRefreshMs: 1000, maxSeqAhead: 4096, maxClockSkewMs: 60_000, memoryBytes: DEFAULT_DETECTION_MEMORY, ...opts }
    this.#budget = new StateBudget(this.#opts.memoryBytes)
    this.stats = {
      hosts: 0, hostsAged: 0, batches: 0, records: 0, matched: 0, duplicates: 0, refused: 0, openIncidents: 0, groups: 0, stateOverflow: 0, findings: 0,
      stateBytes: 0, budgetBytes: this.#budget.limit, evictions: this.#budget.evictions, instancesEvicted: 0, instancesExpired: 0,
    }
    const l = this.#opts.limits
    this.projector = new Projector(rules.paths, 1024, new RecordChecks(rules.paths, {
      maxAgeMs: l.maxRecordAgeMs ?? RECORD_WINDOW.maxAgeMs,
      maxAheadMs: l.maxRecordAheadMs ?? RECORD_WINDOW.maxAheadMs,
    }), rules.routing)
    this.#actors = new ActorRegistry(rules.correlations.length, this.#opts.maxSeqAhead, this.stats, this.#budget)
    this.#incidents = new IncidentLifecycle(this.#opts.productVersion, this.stats, this.#budget)
    this.#fleet = new FleetReports(this.#opts.fleetRefreshMs)
    this.#ctx = { stats: this.stats, incidents: this.#incidents, maxGroups: this.#opts.maxGroups, budget: this.#budget, unsettled: [] }
    const slot = (f: string): number => this.projector.slot(f)
    this.#kinds = new Uint8Array(rules.correlations.length)
    this.#correlations = rules.correlations.map((spec, i) => {
      if (spec.stage === 'fleet') { this.#kinds[i] = FLEET_LOCAL; return new FleetLocal(spec, this.#ctx, slot, this.#fleet) }
      if (spec.sources !== undefined) { this.#kinds[i] = DISTRIBUTED; return new Distributed(spec, this.#ctx, slot) }
      if (spec.type === 'value_count') { this.#kinds[i] = VALUE_COUNT; return new ValueCount(spec, this.#ctx, slot) }
      if (spec.type === 'temporal' || spec.type === 'temporal_ordered') { this.#kinds[i] = TEMPORAL; return new Temporal(spec, this.#ctx, slot) }
      this.#kinds[i] = EVENT_COUNT
      return new EventCount(spec, this.#ctx, slot)
    })
    for (const k of this.#correlations) {
      const below = k.spec.sources?.below
      if (k instanceof Distributed && below !== undefined) k.below = this.#correlations[below] as ValueCount
    }
    this.#active = rules.routing.classes.map(c => rules.detections.filter(d => d.classUid === c.uid && d.correlations.length > 0))
  }

  /** A batch the collector refused: its seq is spent, so the instance's dedup window moves past it. */
  skipSeq (hostId: string, instance: string, seq: number, nowWall: number, floors?: readonly InstanceFloor[]): void {
    this.#actors.arrive(hostId, undefined, nowWall, floors).seqs.accept(instance, seq, nowWall)
  }

  /** Hosts the bridge stopped routing here (idle): each actor goes once its windows are empty and no incident is open. */
  forget (hostIds: Iterable<string>): void {
    this.#actors.forget(hostIds)
  }

  processBatch (input: BatchInput, nowWall: number): BatchOutcome {
    const actor = this.#actors.arrive(input.hostId, input.hostname, nowWall, input.floors)
    const n = admit(input, actor, this.projector, this.#opts.limits, this.stats)
    if (typeof n !== 'number') return n
    this.#rows(actor, n, input.recvAt, nowWall)
    actor.records += n
    this.stats.records += n
    this.#afterBatch(actor, nowWall)
    return { status: 'accepted', records: n }
  }

  #rows (actor: Actor, n: number, recvAt: number, nowWall: number): void {
    const c = this.projector.cols
    const S = c.S
    const byClass = this.#active
    const cors = this.#correlations
    const kinds = this.#kinds
    const future = nowWall + this.#opts.maxClockSkewMs
    let matched = 0
    for (let r = 0; r < n; r++) {
      const b = r * S
      let t = cellNum(c, b + TIME, recvAt)
      if (t > future) t = recvAt
      if (t > actor.clock) actor.clock = t
      const cls = c.cls[r]
      if (cls < 0) continue
      const active = byClass[cls]
      for (let d = 0; d < active.length; d++) {
        const det = active[d]
        if (!det.match(c, b)) continue
        matched++
        const cs = det.correlations
        for (let k = 0; k < cs.length; k++) {
          const i = cs[k]
          switch (kinds[i]) {
            case VALUE_COUNT: (cors[i] as ValueCount).record(actor, c, b, t, nowWall, recvAt); break
            case EVENT_COUNT: (cors[i] as EventCount).record(actor, c, b, t, nowWall, recvAt); break
            case DISTRIBUTED: (cors[i] as Distributed).record(actor, c, b, t, nowWall, recvAt); break
            case FLEET_LOCAL: (cors[i] as FleetLocal).record(actor, c, b, t, nowWall, recvAt); break
            case TEMPORAL: (cors[i] as Temporal).recordStep(actor, c, b, t, nowWall, recvAt, det.index); break
          }
        }
      }
    }
    this.stats.matched += matched
  }

  #afterBatch (actor: Actor, nowWall: number): void {
    const unsettled = this.#ctx.unsettled
    if (unsettled.length > 0) {
      for (const k of unsettled) k.settle(actor, nowWall)
      unsettled.length = 0
    }
    this.#fleet.flushFresh(nowWall)
    this.#enforce(nowWall)
  }

  #enforce (nowWall: number): void {
    this.#budget.enforce(nowWall)
    this.stats.stateBytes = this.#budget.bytes
  }

  /** Periodic work: incident updates and closes, fleet refreshes, state expiry. */
  tick (nowWall: number): void {
    this.#incidents.tick(nowWall)
    this.#fleet.flush(nowWall, false)
    if (nowWall - this.#lastGc >= 1000) {
      this.#lastGc = nowWall
      let groups = 0
      for (const actor of this.#actors.values()) {
        let held = 0
        for (const k of this.#correlations) held += k.gc(actor, nowWall)
        groups += held
        if (held === 0 && actor.forgotten) this.#actors.drop(actor)
      }
      this.stats.groups = groups
    }
    this.#enforce(nowWall)
  }

  /** Findings and fleet deltas produced since the last call. */
  drain (): { findings: FindingEvent[], fleet: FleetDelta[] } {
    return { findings: this.#incidents.drain(), fleet: this.#fleet.drain() }
  }

  /** Force pending updates and fleet reports out now (tests, shutdown). */
  flush (nowWall: number): void {
    this.#incidents.flush(nowWall)
    this.#fleet.flush(nowWall, true)
  }

  /** Hosts that received batches since the last call. */
  takeHostSummaries (): HostSummary[] {
    return this.#actors.takeSummaries()
  }
}
