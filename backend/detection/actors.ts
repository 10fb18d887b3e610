import { BYTES, strBytes, type StateBudget } from './budget.js'
import type { EngineStats, HostSummary } from './protocol.js'
import { InstanceWindows, type InstanceFloor } from './seq.js'

// One actor per host: its dedup windows (one per agent instance, seq.ts),
// its clock (the latest event time it sent), its counters, and one state per
// correlation rule, made on first use.

export class Actor {
  readonly hostId: string
  hostname: string | undefined
  readonly seqs: InstanceWindows
  clock = -Infinity
  lastWall = 0
  /** indexed by CorrelationSpec.index */
  readonly states: unknown[]
  records = 0
  batches = 0
  duplicates = 0
  refused = 0
  /** received a batch since the last summary */
  touched = false
  /** the bridge stopped routing to it (idle): dropped once it holds no state */
  forgotten = false

  constructor (hostId: string, rules: number, maxSeqAhead: number, stats: EngineStats) {
    this.hostId = hostId
    this.states = new Array<unknown>(rules)
    this.seqs = new InstanceWindows(maxSeqAhead, stats)
  }
}

export class ActorRegistry {
  readonly #actors = new Map<string, Actor>()
  readonly #rules: number
  readonly #maxSeqAhead: number
  readonly #stats: EngineStats
  readonly #budget: StateBudget
  /** dropped with a summary still due */
  #departed: HostSummary[] = []

  constructor (rules: number, maxSeqAhead: number, stats: EngineStats, budget: StateBudget) {
    this.#rules = rules
    this.#maxSeqAhead = maxSeqAhead
    this.#stats = stats
    this.#budget = budget
  }

  /** The host's actor, made when it has none; `floors` (persisted by the store, per instance) raise its dedup windows. */
  get (hostId: string, floors: readonly InstanceFloor[] = [], nowWall = 0): Actor {
    let a = this.#actors.get(hostId)
    if (a === undefined) {
      a = new Actor(hostId, this.#rules, this.#maxSeqAhead, this.#stats)
      this.#actors.set(hostId, a)
      this.#budget.charge(actorBytes(hostId))
      this.#stats.hosts++
    }
    for (const f of floors) a.seqs.restore(f, nowWall)
    return a
  }

  /** The actor a batch arrives at, told when and under which hostname. */
  arrive (hostId: string, hostname: string | undefined, nowWall: number, floors?: readonly InstanceFloor[]): Actor {
    const a = this.get(hostId, floors, nowWall)
    a.touched = true
    a.forgotten = false
    a.lastWall = nowWall
    if (hostname !== undefined && hostname !== '') a.hostname = hostname
    return a
  }

  /** Mark idle hosts: each goes once it holds no state. */
  forget (hostIds: Iterable<string>): void {
    for (const h of hostIds) {
      const a = this.#actors.get(h)
      if (a !== undefined) a.forgotten = true
    }
  }

  /** Let a forgotten actor that holds no state go. */
  drop (a: Actor): void {
    if (this.#actors.get(a.hostId) !== a) return
    if (a.touched) this.#departed.push(summary(a))
    this.#actors.delete(a.hostId)
    this.#budget.charge(-actorBytes(a.hostId))
    this.#stats.hosts--
    this.#stats.hostsAged++
  }

  values (): IterableIterator<Actor> {
    return this.#actors.values()
  }

  /** Hosts that received batches since the last call. */
  takeSummaries (): HostSummary[] {
    const out = this.#departed
    this.#departed = []
    for (const a of this.#actors.values()) {
      if (!a.touched) continue
      a.touched = false
      out.push(summary(a))
    }
    return out
  }
}

function summary (a: Actor): HostSummary {
  return { hostId: a.hostId, floors: a.seqs.floors(a.lastWall), records: a.records, batches: a.batches, duplicates: a.duplicates, refused: a.refused, gapsSkipped: a.seqs.gapsSkipped }
}

function actorBytes (hostId: string): number {
  return BYTES.actor + strBytes(hostId)
}
