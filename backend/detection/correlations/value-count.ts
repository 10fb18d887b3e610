import type { Actor } from '../actors.js'
import { BYTES } from '../budget.js'
import { cellKey, countAt, evidenceAt, type Key } from '../cells.js'
import { EVIDENCE_FIRST, Incident, type Ev } from '../incident.js'
import { StatSlab } from '../stat-slab.js'
import type { Cols } from '../projector.js'
import { Group, GroupCorrelation } from './correlation.js'

const VALUE_BYTES = BYTES.entry + BYTES.valStat

// value_count, host stage: the distinct values of `field` per group over a
// sliding window; an incident once `min` of them are live.

/**
 * Distinct values of one group, each a slot of the correlation's StatSlab
 * (first/last/count). Most groups never hold more than one value (a client
 * on one port), so the first lives inline and a Map is made only for the
 * second: at 10,000 hosts the empty Maps were most of the detection state.
 */
class ValSet {
  readonly #slab: StatSlab
  #k0: Key | undefined
  #s0 = -1
  #m: Map<Key, number> | undefined

  constructor (slab: StatSlab) { this.#slab = slab }

  get size (): number { return this.#m !== undefined ? this.#m.size : this.#s0 >= 0 ? 1 : 0 }

  /** The value's slot, -1 if it has none. */
  get (k: Key): number {
    if (this.#m !== undefined) return this.#m.get(k) ?? -1
    return this.#s0 >= 0 && this.#k0 === k ? this.#s0 : -1
  }

  /** Add a value not in the set, with its slot. */
  add (k: Key, slot: number): void {
    if (this.#m !== undefined) { this.#m.set(k, slot); return }
    if (this.#s0 < 0) { this.#k0 = k; this.#s0 = slot; return }
    this.#m = new Map([[this.#k0 as Key, this.#s0], [k, slot]])
    this.#k0 = undefined
    this.#s0 = -1
  }

  /** Drop the values last seen before `cutoff`; how many went. */
  prune (cutoff: number): number {
    const before = this.size
    const last = this.#slab.last
    if (this.#m !== undefined) {
      for (const [k, s] of this.#m) if (last[s] < cutoff) { this.#m.delete(k); this.#slab.release(s) }
    } else if (this.#s0 >= 0 && last[this.#s0] < cutoff) this.#drop0()
    return before - this.size
  }

  /** Drop every value, giving their slots back. */
  clear (): void {
    if (this.#m !== undefined) for (const s of this.#m.values()) this.#slab.release(s)
    this.#m = undefined
    if (this.#s0 >= 0) this.#drop0()
  }

  #drop0 (): void {
    this.#slab.release(this.#s0)
    this.#k0 = undefined
    this.#s0 = -1
  }

  * [Symbol.iterator] (): IterableIterator<[Key, number]> {
    if (this.#m !== undefined) yield * this.#m
    else if (this.#s0 >= 0) yield [this.#k0 as Key, this.#s0]
  }
}

class VcGroup extends Group {
  readonly vals: Record<string, Key>
  readonly values: ValSet
  /** evidence records before an incident opens, one per new distinct value (at its slot), EVIDENCE_FIRST at most */
  evN = 0
  constructor (key: Key, actor: Actor, vals: Record<string, Key>, slab: StatSlab) { super(key, actor); this.vals = vals; this.values = new ValSet(slab) }
}

export class ValueCount extends GroupCorrelation<VcGroup> {
  readonly evictKind = 'value_count'
  /** every group's per-value statistics */
  readonly #slab = new StatSlab()

  protected newGroup (actor: Actor, key: Key, c: Cols, b: number): VcGroup {
    return new VcGroup(key, actor, this.groupVals(actor, c, b), this.#slab)
  }

  protected override dropped (g: VcGroup): void {
    g.values.clear()
  }

  protected groupBytes (): number {
    return 0
  }

  record (actor: Actor, c: Cols, b: number, t: number, nowWall: number, recvAt: number): void {
    const key = this.key(c, b)
    if (key === undefined) return
    const v = cellKey(c, b + this.fieldSlot)
    if (v === undefined) return
    const g = this.group(actor, key, c, b, nowWall)
    if (g === undefined) return
    g.lastWall = nowWall
    if (t > g.last) g.last = t
    if (g.open !== undefined) { this.ctx.incidents.observe(g.open, v, c, b, t, nowWall); return }
    const s = g.values.get(v)
    if (s >= 0) this.#slab.add(s, t, countAt(c, b))
    else {
      if (t < g.last - this.spec.timespanMs) return
      const slot = this.#slab.alloc(t, t, countAt(c, b))
      g.values.add(v, slot)
      let grew = VALUE_BYTES
      if (g.evN < EVIDENCE_FIRST) { this.#slab.evidence.put(slot, evidenceAt(actor, c, b, t)); g.evN++; grew += BYTES.evidence }
      this.ctx.budget.resize(g, grew)
      if (g.values.size >= this.spec.min) this.#check(actor, g, key, nowWall, recvAt)
    }
    // evidence before an incident: one record per new distinct value only.
    // A repeat of a value says nothing new, and most groups (a client on one
    // port) never grow past one value: keeping their repeats cost ~10 records
    // per group, the bulk of a host's state at fleet scale.
  }

  #check (actor: Actor, g: VcGroup, key: Key, nowWall: number, recvAt: number): void {
    const spec = this.spec
    const cutoff = g.last - spec.timespanMs
    this.ctx.budget.resize(g, -g.values.prune(cutoff) * VALUE_BYTES)
    if (g.values.size < spec.min) return
    this.opened(g)
    const inc = new Incident(spec, `${actor.hostId}\u0001${String(key)}`, g.vals, nowWall, recvAt)
    const src = g.vals['src_endpoint.ip']
    const isPort = spec.field === 'dst_endpoint.port'
    const slab = this.#slab
    // the evidence of the values still in the window, in the order they came
    const evs: Ev[] = []
    for (const [v, s] of g.values) {
      inc.seed(v, slab.stat(s), isPort && typeof v === 'number' ? v : -1, typeof src === 'string' ? src : undefined, actor.hostId, actor.hostname)
      if (!slab.evidence.has(s)) continue
      const e = slab.evidence.get(s, actor.hostId)
      if (e.t >= cutoff) evs.push(e)
    }
    g.open = this.ctx.incidents.open(actor, this, key, inc, evs, nowWall)
    g.values.clear()
    g.evN = 0
  }

  /** Does `src`, grouped with this host, stay under this rule's threshold? */
  under (actor: Actor, src: string): boolean {
    const g = this.stateOf(actor)?.get(src)
    if (g === undefined) return true
    if (g.open !== undefined) return false
    const spec = this.spec
    if (g.values.size < spec.min) return true
    const cutoff = g.last - spec.timespanMs
    let live = 0
    const last = this.#slab.last
    for (const [, s] of g.values) if (last[s] >= cutoff) live++
    return live < spec.min
  }
}
