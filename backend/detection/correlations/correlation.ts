import type { Actor } from '../actors.js'
import { BudgetNode, BYTES, strBytes, type NodeOwner, type StateBudget, type StateKind } from '../budget.js'
import { cellKey, type Key } from '../cells.js'
import type { IncidentLifecycle, IncidentOwner, OpenIncident } from '../lifecycle.js'
import type { Cols } from '../projector.js'
import type { EngineStats } from '../protocol.js'
import { HOST_FIELD, type CorrelationSpec } from '../rules/compile.js'

// What every correlation kind shares: its rule, the column slots it reads,
// its state on each actor, and the engine's counters and open incidents.

export interface CorrelationContext {
  readonly stats: EngineStats
  readonly incidents: IncidentLifecycle
  /** per host and rule: groups beyond this are not tracked (counted in stats.stateOverflow) */
  readonly maxGroups: number
  /** the worker's one memory budget, over every host and rule */
  readonly budget: StateBudget
  /** kinds that decide once the batch is in, not record by record: settled with the batch's actor */
  readonly unsettled: Array<{ settle: (actor: Actor, nowWall: number) => void }>
}

/** The group value naming a finding's process tree (the oldest ancestor pid its records carry). */
export const TREE_ROOT = 'process_tree_root'

export abstract class Correlation<S> {
  readonly spec: CorrelationSpec
  readonly ctx: CorrelationContext
  /** group-by slots without device.uid (the actor is the host) */
  readonly keySlots: number[]
  /** every group-by field's slot; -1 for device.uid */
  readonly groupSlots: number[]
  /** the counted field's slot, -1 when the rule counts events */
  readonly fieldSlot: number
  /** the process-tree root's candidate slots, oldest ancestor first (empty: no tree) */
  readonly rootSlots: number[]
  /** the first record's fields a finding shows */
  readonly contextSlots: number[]

  constructor (spec: CorrelationSpec, ctx: CorrelationContext, slot: (field: string) => number) {
    this.spec = spec
    this.ctx = ctx
    this.keySlots = spec.groupBy.filter(f => f !== HOST_FIELD).map(slot)
    this.groupSlots = spec.groupBy.map(f => f === HOST_FIELD ? -1 : slot(f))
    this.fieldSlot = spec.field !== undefined ? slot(spec.field) : -1
    this.rootSlots = (spec.treeRoot ?? []).map(slot)
    this.contextSlots = (spec.context ?? []).map(slot)
  }

  /** The row's process-tree root: the first candidate the record has ('' for none). */
  root (c: Cols, b: number): Key {
    const rs = this.rootSlots
    for (let i = 0; i < rs.length; i++) {
      const v = cellKey(c, b + rs[i])
      if (v !== undefined) return v
    }
    return ''
  }

  /** Count the row at `b`, seen at event time `t`. */
  abstract record (actor: Actor, c: Cols, b: number, t: number, nowWall: number, recvAt: number): void

  /** Drop what fell out of the window; returns the groups still held. */
  abstract gc (actor: Actor, nowWall: number): number

  protected abstract fresh (actor: Actor): S

  stateOf (actor: Actor): S | undefined {
    return actor.states[this.spec.index] as S | undefined
  }

  state (actor: Actor): S {
    let s = actor.states[this.spec.index] as S | undefined
    if (s === undefined) { s = this.fresh(actor); actor.states[this.spec.index] = s }
    return s
  }

  /** The row's group on this host: one value as is, several joined. */
  key (c: Cols, b: number): Key | undefined {
    const ks = this.keySlots
    if (this.rootSlots.length > 0) {
      const k = ks.length === 0 ? '' : this.#joined(c, b)
      return k === undefined ? undefined : `${String(k)}\u0002${String(this.root(c, b))}`
    }
    return this.#joined(c, b)
  }

  #joined (c: Cols, b: number): Key | undefined {
    const ks = this.keySlots
    if (ks.length === 0) return ''
    if (ks.length === 1) return cellKey(c, b + ks[0])
    let s = ''
    for (let i = 0; i < ks.length; i++) {
      const v = cellKey(c, b + ks[i])
      if (v === undefined) return undefined
      s += (i === 0 ? '' : '\u0001') + String(v)
    }
    return s
  }

  /** The group-by fields and their values, for the finding. */
  groupVals (actor: Actor, c: Cols, b: number): Record<string, Key> {
    const out: Record<string, Key> = {}
    const fields = this.spec.groupBy
    for (let i = 0; i < fields.length; i++) {
      const s = this.groupSlots[i]
      out[fields[i]] = s < 0 ? actor.hostId : (cellKey(c, b + s) ?? '')
    }
    if (this.rootSlots.length > 0) out[TREE_ROOT] = this.root(c, b)
    const cs = this.contextSlots
    const names = this.spec.context ?? []
    for (let i = 0; i < cs.length; i++) {
      const v = cellKey(c, b + cs[i])
      if (v !== undefined) out[names[i]] = v
    }
    return out
  }
}

/** A group of one host: its times and, once it crossed, its incident (which then carries its bytes). */
export abstract class Group extends BudgetNode {
  readonly key: Key
  readonly actor: Actor
  last = -Infinity
  lastWall = 0
  open: OpenIncident | undefined = undefined
  constructor (key: Key, actor: Actor) { super(); this.key = key; this.actor = actor }
}

/** A kind that keeps one group per key on each host (value_count, event_count). */
export abstract class GroupCorrelation<G extends Group> extends Correlation<Map<Key, G>> implements IncidentOwner, NodeOwner {
  abstract readonly evictKind: StateKind

  protected fresh (): Map<Key, G> {
    return new Map()
  }

  /** A new group, for the row at `b`, and the bytes it is charged. */
  protected abstract newGroup (actor: Actor, key: Key, c: Cols, b: number): G
  protected abstract groupBytes (g: G): number

  /** The group of `key`, made for the row at `b` when there is room; undefined (and counted) when there is not. */
  group (actor: Actor, key: Key, c: Cols, b: number, nowWall: number): G | undefined {
    const groups = this.state(actor)
    let g = groups.get(key)
    if (g === undefined) {
      if (groups.size >= this.ctx.maxGroups) { this.ctx.stats.stateOverflow++; return undefined }
      g = this.newGroup(actor, key, c, b)
      groups.set(key, g)
      this.ctx.budget.link(g, this, BYTES.group + strBytes(key) + this.groupBytes(g), nowWall)
    } else this.ctx.budget.touch(g, nowWall)
    return g
  }

  /** `g` leaves its host's groups (aged out, evicted, its incident closed): let go of what it holds outside itself. */
  protected dropped (_g: G): void {}

  /** `g` crossed: its incident carries it from now on. */
  protected opened (g: G): void {
    this.ctx.budget.unlink(g)
  }

  release (actor: Actor, key: Key): void {
    const m = this.stateOf(actor)
    const g = m?.get(key)
    if (g === undefined) return
    m?.delete(key)
    this.dropped(g)
  }

  evict (node: BudgetNode): void {
    const g = node as G
    const m = this.stateOf(g.actor)
    if (m?.get(g.key) === g) { m.delete(g.key); this.dropped(g) }
    this.ctx.budget.unlink(g)
  }

  gc (actor: Actor, nowWall: number): number {
    const m = this.stateOf(actor)
    if (m === undefined) return 0
    const span = this.spec.timespanMs
    const cutoff = actor.clock - span
    for (const [k, g] of m) {
      if (g.open === undefined && (g.last < cutoff || nowWall - g.lastWall > span)) { m.delete(k); this.dropped(g); this.ctx.budget.unlink(g) }
    }
    return m.size
  }
}
