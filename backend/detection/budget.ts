// One memory budget for a detection stage's correlation state: every group,
// per-source map, fleet sighting and open incident is a node on one list in
// least-recently-active order, with an estimate of the bytes it holds. When
// the total passes the budget, the nodes at the head (the ones quiet the
// longest) are evicted, whatever host or rule they belong to, and each
// eviction is counted by kind. A worker has one budget for all its hosts; the
// fleet stage on the main thread has one of its own.
//
// The estimates are V8 heap bytes on a 64-bit Node.js, measured with
// --expose-gc against the real structures and rounded up: an object is its
// header plus 8 bytes a field, a Map entry about 40 bytes with its share of
// the table, a number that is not a small integer (every millisecond time) a
// 16-byte heap number, a string its length plus a 16-byte header.

/** Each detection worker's budget, and the fleet stage's, unless --detection-memory says otherwise. */
export const DEFAULT_DETECTION_MEMORY = 256 * 1024 * 1024

/** What the budget evicts; picket_detection_state_evictions_total{kind}. */
export const STATE_KINDS = ['value_count', 'event_count', 'distributed', 'fleet_local', 'incident', 'fleet_group', 'fleet_incident'] as const
export type StateKind = typeof STATE_KINDS[number]
export type StateEvictions = Record<StateKind, number>

export function noEvictions (): StateEvictions {
  return { value_count: 0, event_count: 0, distributed: 0, fleet_local: 0, incident: 0, fleet_group: 0, fleet_incident: 0 }
}

/** Bytes an entry is charged. */
export const BYTES = {
  /** a Map entry holding an object: the entry, the object's header, its key */
  entry: 96,
  /** one distinct value with its first/last/count (an object of three heap numbers) */
  valStat: 120,
  /** one evidence record (twelve fields, two times, up to three strings shared with the batch) */
  evidence: 232,
  /** one evidence record that crossed threads: structured clone gave it strings of its own */
  clonedEvidence: 392,
  /** a group of one host: the group object, its group-by values, its map entry */
  group: 360,
  /** a host's actor: its dedup window, counters and one slot per rule */
  actor: 600,
  /** an incident without its distinct values: ids, times, twenty evidence records, its maps */
  incident: 6_000,
} as const

/** A string's share of the heap. */
export function strBytes (s: string | number): number {
  return typeof s === 'string' ? 16 + s.length : 16
}

/** Who holds a node, and lets it go when the budget evicts it. */
export interface NodeOwner {
  readonly evictKind: StateKind
  /** drop the node's state and unlink it (StateBudget.unlink) */
  evict: (node: BudgetNode, nowWall: number) => void
}

/** An entry on the budget's list; the state objects themselves extend it, so the list costs no extra objects. */
export class BudgetNode {
  prev: BudgetNode | undefined = undefined
  next: BudgetNode | undefined = undefined
  holder: NodeOwner | undefined = undefined
  bytes = 0
  /** wall time it last moved to the tail; a batch moves a node at most once */
  at = 0
}

export class StateBudget {
  readonly limit: number
  /** estimated bytes of every linked node, plus the fixed charges */
  bytes = 0
  nodes = 0
  readonly evictions: StateEvictions = noEvictions()
  #head: BudgetNode | undefined
  #tail: BudgetNode | undefined

  constructor (limit: number) {
    this.limit = limit
  }

  /** Track `n`, charged `bytes`, as the most recently active. */
  link (n: BudgetNode, owner: NodeOwner, bytes: number, nowWall: number): void {
    if (n.holder !== undefined) return
    n.holder = owner
    n.bytes = bytes
    n.at = nowWall
    this.bytes += bytes
    this.nodes++
    this.#append(n)
  }

  /** `n` was active at `nowWall`: it moves to the tail. */
  touch (n: BudgetNode, nowWall: number): void {
    if (n.at === nowWall || n.holder === undefined) return
    n.at = nowWall
    if (n === this.#tail) return
    this.#detach(n)
    this.#append(n)
  }

  /** `n` grew (or shrank) by `delta` bytes. */
  resize (n: BudgetNode, delta: number): void {
    if (n.holder === undefined) return
    n.bytes += delta
    this.bytes += delta
  }

  /** Stop tracking `n` (its owner dropped it, or handed its bytes to another node). */
  unlink (n: BudgetNode): void {
    if (n.holder === undefined) return
    this.#detach(n)
    this.bytes -= n.bytes
    this.nodes--
    n.holder = undefined
    n.bytes = 0
  }

  /** State charged outside the list (actors): it counts, but is not evicted here. */
  charge (delta: number): void {
    this.bytes += delta
  }

  /** Evict the least recently active nodes until the total is within the limit; how many went. */
  enforce (nowWall: number): number {
    let n = 0
    while (this.bytes > this.limit && this.#head !== undefined) {
      const h = this.#head
      const owner = h.holder as NodeOwner
      owner.evict(h, nowWall)
      // an owner that failed to let go must not stall the loop
      if (h.holder !== undefined) this.unlink(h)
      this.evictions[owner.evictKind]++
      n++
    }
    return n
  }

  #append (n: BudgetNode): void {
    n.prev = this.#tail
    n.next = undefined
    if (this.#tail !== undefined) this.#tail.next = n
    else this.#head = n
    this.#tail = n
  }

  #detach (n: BudgetNode): void {
    if (n.prev !== undefined) n.prev.next = n.next
    else this.#head = n.next
    if (n.next !== undefined) n.next.prev = n.prev
    else this.#tail = n.prev
    n.prev = undefined
    n.next = undefined
  }
}
