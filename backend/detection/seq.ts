// Duplicate detection by seq, for one (host_id, instance), in bounded
// memory: everything at or below `floor` has been seen, plus a small set of
// seqs above it that arrived out of order. Agents keep a bounded window of
// batches in flight, so the set stays small; if it ever outgrows `maxAhead`,
// the floor jumps to the oldest seq in it and the holes below are given up
// (counted in `gapsSkipped`): a batch that first arrives after that is
// wrongly taken for a duplicate, which is the price of bounded memory.

export class SeqWindow {
  floor: number
  readonly #above = new Set<number>()
  readonly #maxAhead: number
  gapsSkipped = 0

  constructor (floor = 0, maxAhead = 4096) {
    this.floor = floor
    this.#maxAhead = maxAhead
  }

  /** True when `seq` is new (and records it); false for a duplicate. */
  accept (seq: number): boolean {
    if (seq <= this.floor || this.#above.has(seq)) return false
    if (seq === this.floor + 1) {
      this.floor = seq
      while (this.#above.delete(this.floor + 1)) this.floor++
      return true
    }
    this.#above.add(seq)
    if (this.#above.size > this.#maxAhead) {
      let min = Infinity
      for (const s of this.#above) if (s < min) min = s
      this.gapsSkipped += min - this.floor - 1
      this.#above.delete(min)
      this.floor = min
      while (this.#above.delete(this.floor + 1)) this.floor++
    }
    return true
  }

  get pending (): number {
    return this.#above.size
  }
}

/** The dedup floor of one agent instance of a host: every seq <= lastSeq was seen; lastSeen (wall ms) ages it out. */
export interface InstanceFloor { instance: string, lastSeq: number, lastSeen: number }

/** Live instances (seq streams) a host may have before the least recently active one's floor is forgotten. */
export const MAX_INSTANCES_PER_HOST = 8
/** An instance not heard from for this long is gone: its floor is forgotten, in memory and in the store. */
export const INSTANCE_TTL_MS = 7 * 24 * 3600_000

export interface InstanceStats {
  /** floors forgotten because the host had MAX_INSTANCES_PER_HOST newer ones */
  instancesEvicted: number
  /** floors forgotten after INSTANCE_TTL_MS without a batch */
  instancesExpired: number
}

interface Live { window: SeqWindow, lastSeen: number }

// One host's dedup windows, one per agent instance: the delivery identity is
// (host, instance, seq), so an agent whose spool restarted (a new instance,
// seq from 1) never meets its old floor, and a client that claims the host
// under an instance of its own can push only that instance's floor. The
// number of instances is bounded; forgetting a floor never mutes an agent
// (its batches are then all new), at worst a replay is counted twice.
export class InstanceWindows {
  readonly #live = new Map<string, Live>()
  readonly #maxAhead: number
  readonly #max: number
  readonly #ttlMs: number
  readonly #stats: InstanceStats
  /** gaps skipped by windows forgotten since */
  #gapsGone = 0

  constructor (maxAhead: number, stats: InstanceStats, max = MAX_INSTANCES_PER_HOST, ttlMs = INSTANCE_TTL_MS) {
    this.#maxAhead = maxAhead
    this.#stats = stats
    this.#max = max
    this.#ttlMs = ttlMs
  }

  /** True when `seq` is new for `instance` (and records it); false for a duplicate. */
  accept (instance: string, seq: number, now: number): boolean {
    let l = this.#live.get(instance)
    if (l === undefined) l = this.#add(instance, new SeqWindow(0, this.#maxAhead), now, now)
    if (now > l.lastSeen) l.lastSeen = now
    return l.window.accept(seq)
  }

  /** Seed a floor persisted by an earlier run. */
  restore (f: InstanceFloor, now: number): void {
    if (now - f.lastSeen > this.#ttlMs) return
    const l = this.#live.get(f.instance)
    if (l !== undefined) { l.window.floor = Math.max(l.window.floor, f.lastSeq); l.lastSeen = Math.max(l.lastSeen, f.lastSeen); return }
    this.#add(f.instance, new SeqWindow(f.lastSeq, this.#maxAhead), f.lastSeen, now)
  }

  /** The live floors, after forgetting those idle past the TTL. */
  floors (now: number): InstanceFloor[] {
    this.#expire(now)
    const out: InstanceFloor[] = []
    for (const [instance, l] of this.#live) out.push({ instance, lastSeq: l.window.floor, lastSeen: l.lastSeen })
    return out
  }

  get size (): number { return this.#live.size }

  get gapsSkipped (): number {
    let n = this.#gapsGone
    for (const l of this.#live.values()) n += l.window.gapsSkipped
    return n
  }

  #add (instance: string, window: SeqWindow, lastSeen: number, now: number): Live {
    this.#expire(now)
    while (this.#live.size >= this.#max) {
      let oldest: string | undefined
      let at = Infinity
      for (const [k, l] of this.#live) if (l.lastSeen < at) { at = l.lastSeen; oldest = k }
      this.#forget(oldest as string)
      this.#stats.instancesEvicted++
    }
    const l = { window, lastSeen }
    this.#live.set(instance, l)
    return l
  }

  #expire (now: number): void {
    for (const [k, l] of this.#live) {
      if (now - l.lastSeen > this.#ttlMs) { this.#forget(k); this.#stats.instancesExpired++ }
    }
  }

  #forget (instance: string): void {
    this.#gapsGone += (this.#live.get(instance) as Live).window.gapsSkipped
    this.#live.delete(instance)
  }
}
