import type { Actor } from '../actors.js'
import { BudgetNode, BYTES, strBytes, type NodeOwner } from '../budget.js'
import { cellKey, countAt, evidenceAt, type Key } from '../cells.js'
import type { Ev } from '../incident.js'
import type { Cols } from '../projector.js'
import type { FleetDelta } from '../protocol.js'
import { HOST_FIELD, type CorrelationSpec } from '../rules/compile.js'
import { Correlation, type CorrelationContext } from './correlation.js'

// The fleet stage, worker side: a fleet rule's groups span hosts on other
// workers, so a worker reports (group, value) sightings, not records, to the
// main thread's FleetStage (fleet.ts). A new sighting goes out with the batch
// that made it; a known one is refreshed at most once per fleetRefreshMs.

class FleetLeaf extends BudgetNode {
  readonly st: Sightings
  readonly vals: Key[]
  readonly value: Key
  first: number
  last: number
  count = 0
  /** wall time of its last sighting: an idle host's clock stands still, so its leaves expire by the wall */
  lastWall = 0
  reportedCount = 0
  reportedWall = -1
  dirty = false
  ev: Ev | undefined
  recvAt: number
  constructor (st: Sightings, vals: Key[], value: Key, t: number, ev: Ev, recvAt: number) {
    super()
    this.st = st; this.vals = vals; this.value = value
    this.first = this.last = t
    this.ev = ev; this.recvAt = recvAt
  }
}

/** a leaf, its evidence until first reported, and its share of the maps above it */
function leafBytes (vals: Key[]): number {
  let n = BYTES.group + BYTES.evidence + BYTES.entry
  for (const v of vals) n += strBytes(v)
  return n
}

/** One fleet rule's sightings on one host: a tree keyed by the group-by values, leaves keyed by value. */
class Sightings {
  readonly actor: Actor
  readonly rule: number
  readonly root = new Map<Key, unknown>()
  /** leaves touched since their last report */
  dirty: FleetLeaf[] = []
  queued = false
  leaves = 0
  constructor (actor: Actor, rule: number) { this.actor = actor; this.rule = rule }
}

/** The sightings every fleet rule of one engine has to report, and the reports made. */
export class FleetReports {
  readonly #refreshMs: number
  #out: FleetDelta[] = []
  /** sightings holding leaves touched since their last report */
  #queue: Sightings[] = []
  /** leaves never reported: reported at the end of the batch that created them */
  readonly #fresh: Array<[Sightings, FleetLeaf]> = []

  constructor (refreshMs: number) {
    this.#refreshMs = refreshMs
  }

  created (st: Sightings, leaf: FleetLeaf): void {
    this.#fresh.push([st, leaf])
  }

  touched (st: Sightings, leaf: FleetLeaf, recvAt: number): void {
    leaf.dirty = true
    leaf.recvAt = recvAt
    st.dirty.push(leaf)
    if (!st.queued) { st.queued = true; this.#queue.push(st) }
  }

  /** New sightings go out with the batch that made them: the fleet stage sees a sweep without delay. */
  flushFresh (nowWall: number): void {
    if (this.#fresh.length === 0) return
    for (const [st, leaf] of this.#fresh) if (leaf.reportedWall < 0) this.#report(st, leaf, nowWall)
    this.#fresh.length = 0
  }

  /** Refreshes of known sightings (counts, last seen), at most once per refreshMs each unless `force`. */
  flush (nowWall: number, force: boolean): void {
    this.flushFresh(nowWall)
    if (this.#queue.length === 0) return
    const queue = this.#queue
    this.#queue = []
    for (const st of queue) {
      const keep: FleetLeaf[] = []
      for (const leaf of st.dirty) {
        if (leaf.count === leaf.reportedCount) { leaf.dirty = false; continue }
        if (!force && nowWall - leaf.reportedWall < this.#refreshMs) { keep.push(leaf); continue }
        this.#report(st, leaf, nowWall)
        leaf.dirty = false
      }
      st.dirty = keep
      if (keep.length > 0) this.#queue.push(st)
      else st.queued = false
    }
  }

  /** Reports made since the last call. */
  drain (): FleetDelta[] {
    const out = this.#out
    this.#out = []
    return out
  }

  #report (st: Sightings, leaf: FleetLeaf, nowWall: number): void {
    const actor = st.actor
    this.#out.push({
      rule: st.rule, group: leaf.vals, value: leaf.value, host: actor.hostId, hostname: actor.hostname,
      first: leaf.first, last: leaf.last, count: leaf.count - leaf.reportedCount,
      ev: leaf.reportedWall < 0 ? leaf.ev : undefined, recvAt: leaf.recvAt,
    })
    leaf.reportedWall = nowWall
    leaf.reportedCount = leaf.count
    leaf.ev = undefined
  }
}

export class FleetLocal extends Correlation<Sightings> implements NodeOwner {
  readonly evictKind = 'fleet_local'
  readonly #reports: FleetReports
  /** the counted value is the host itself (device.uid), the last of the group-by slots */
  readonly #valueIsHost: boolean

  constructor (spec: CorrelationSpec, ctx: CorrelationContext, slot: (field: string) => number, reports: FleetReports) {
    super(spec, ctx, slot)
    this.#reports = reports
    this.#valueIsHost = spec.field === HOST_FIELD
  }

  protected fresh (actor: Actor): Sightings {
    return new Sightings(actor, this.spec.index)
  }

  record (actor: Actor, c: Cols, b: number, t: number, nowWall: number, recvAt: number): void {
    const st = this.state(actor)
    const ks = this.keySlots
    let m: Map<Key, unknown> = st.root
    const last = ks.length - (this.#valueIsHost ? 1 : 0)
    for (let i = 0; i < last; i++) {
      const v = cellKey(c, b + ks[i])
      if (v === undefined) return
      let next = m.get(v) as Map<Key, unknown> | undefined
      if (next === undefined) { next = new Map(); m.set(v, next) }
      m = next
    }
    const leafKey = this.#valueIsHost ? cellKey(c, b + ks[ks.length - 1]) : cellKey(c, b + this.fieldSlot)
    if (leafKey === undefined) return
    let leaf = m.get(leafKey) as FleetLeaf | undefined
    if (leaf === undefined) {
      if (st.leaves >= this.ctx.maxGroups) { this.ctx.stats.stateOverflow++; return }
      const vals: Key[] = []
      for (let i = 0; i < ks.length; i++) vals.push(cellKey(c, b + ks[i]) as Key)
      leaf = new FleetLeaf(st, vals, this.#valueIsHost ? actor.hostId : leafKey, t, evidenceAt(actor, c, b, t), recvAt)
      m.set(leafKey, leaf)
      st.leaves++
      this.ctx.budget.link(leaf, this, leafBytes(vals), nowWall)
      this.#reports.created(st, leaf)
    } else this.ctx.budget.touch(leaf, nowWall)
    leaf.lastWall = nowWall
    leaf.count += countAt(c, b)
    if (t > leaf.last) leaf.last = t
    if (t < leaf.first) leaf.first = t
    if (!leaf.dirty) this.#reports.touched(st, leaf, recvAt)
  }

  /** The budget let this sighting go: out of the tree, and the maps it leaves empty with it. */
  evict (node: BudgetNode): void {
    const leaf = node as FleetLeaf
    const st = leaf.st
    this.ctx.budget.unlink(leaf)
    const depth = this.keySlots.length - (this.#valueIsHost ? 1 : 0)
    const path: Array<Map<Key, unknown>> = [st.root]
    for (let i = 0; i < depth; i++) {
      const next = path[i].get(leaf.vals[i]) as Map<Key, unknown> | undefined
      if (next === undefined) return
      path.push(next)
    }
    const leafKey = this.#valueIsHost ? leaf.vals[leaf.vals.length - 1] : leaf.value
    if (path[depth].get(leafKey) !== leaf) return
    path[depth].delete(leafKey)
    st.leaves--
    for (let i = depth; i > 0 && path[i].size === 0; i--) path[i - 1].delete(leaf.vals[i - 1])
  }

  gc (actor: Actor, nowWall: number): number {
    const f = this.stateOf(actor)
    if (f === undefined) return 0
    const span = this.spec.timespanMs
    const cutoff = actor.clock - span
    const prune = (m: Map<Key, unknown>, depth: number): void => {
      for (const [k, v] of m) {
        if (depth === 0) {
          const leaf = v as FleetLeaf
          if (!leaf.dirty && (leaf.last < cutoff || nowWall - leaf.lastWall > span)) { m.delete(k); f.leaves--; this.ctx.budget.unlink(leaf) }
        } else {
          prune(v as Map<Key, unknown>, depth - 1)
          if ((v as Map<Key, unknown>).size === 0) m.delete(k)
        }
      }
    }
    prune(f.root, this.keySlots.length - (this.#valueIsHost ? 1 : 0))
    return f.leaves
  }
}
