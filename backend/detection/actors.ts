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

  constructor (rules: number, maxSeqAhead: number, stats: EngineStats) {
    this.#rules = rules
    this.#maxSeqAhead = maxSeqAhead
    this.#stats = stats
  }

  get (hostId: string): Actor {
    let a = this.#actors.get(hostId)
    if (a === undefined) {
      a = new Actor(hostId, this.#rules, this.#maxSeqAhead, this.#stats)
      this.#actors.set(hostId, a)
      this.#stats.hosts++
    }
    return a
  }

  /** The actor a batch arrives at, told when and under which hostname. */
  arrive (hostId: string, hostname: string | undefined, nowWall: number): Actor {
    const a = this.get(hostId)
    a.touched = true
    a.lastWall = nowWall
    if (hostname !== undefined && hostname !== '') a.hostname = hostname
    return a
  }

  /** Seed the dedup floors persisted by an earlier run. */
  restoreFloors (entries: Iterable<[string, InstanceFloor[]]>, nowWall: number): void {
    for (const [hostId, floors] of entries) {
      const a = this.get(hostId)
      for (const f of floors) a.seqs.restore(f, nowWall)
    }
  }

  values (): IterableIterator<Actor> {
    return this.#actors.values()
  }

  /** Hosts that received batches since the last call. */
  takeSummaries (): HostSummary[] {
    const out: HostSummary[] = []
    for (const a of this.#actors.values()) {
      if (!a.touched) continue
      a.touched = false
      out.push({ hostId: a.hostId, floors: a.seqs.floors(a.lastWall), records: a.records, batches: a.batches, duplicates: a.duplicates, refused: a.refused, gapsSkipped: a.seqs.gapsSkipped })
    }
    return out
  }
}
