import type { Actor } from '../actors.js'
import { BYTES } from '../budget.js'
import { cellKey, countAt, evidenceAt, type Key } from '../cells.js'
import { EVIDENCE_FIRST, Incident, type Ev, type ValStat } from '../incident.js'
import type { Cols } from '../projector.js'
import { Group, GroupCorrelation } from './correlation.js'

const VALUE_BYTES = BYTES.entry + BYTES.valStat

// value_count, host stage: the distinct values of `field` per group over a
// sliding window; an incident once `min` of them are live.

/**
 * Distinct values of one group, with their first/last/count. Most groups
 * never hold more than one value (a client on one port), so the first lives
 * inline and a Map is made only for the second: at 10,000 hosts the empty
 * Maps were most of the detection state.
 */
class ValSet {
  #k0: Key | undefined
  #s0: ValStat | undefined
  #m: Map<Key, ValStat> | undefined

  get size (): number { return this.#m !== undefined ? this.#m.size : this.#s0 !== undefined ? 1 : 0 }

  get (k: Key): ValStat | undefined {
    if (this.#m !== undefined) return this.#m.get(k)
    return this.#s0 !== undefined && this.#k0 === k ? this.#s0 : undefined
  }

  set (k: Key, s: ValStat): void {
    if (this.#m !== undefined) { this.#m.set(k, s); return }
    if (this.#s0 === undefined || this.#k0 === k) { this.#k0 = k; this.#s0 = s; return }
    this.#m = new Map([[this.#k0 as Key, this.#s0], [k, s]])
    this.#k0 = undefined
    this.#s0 = undefined
  }

  /** Drop the values last seen before `cutoff`; how many went. */
  prune (cutoff: number): number {
    const before = this.size
    if (this.#m !== undefined) { for (const [k, s] of this.#m) if (s.last < cutoff) this.#m.delete(k) } else if (this.#s0 !== undefined && this.#s0.last < cutoff) { this.#k0 = undefined; this.#s0 = undefined }
    return before - this.size
  }

  clear (): void { this.#m = undefined; this.#k0 = undefined; this.#s0 = undefined }

  * [Symbol.iterator] (): IterableIterator<[Key, ValStat]> {
    if (this.#m !== undefined) yield * this.#m
    else if (this.#s0 !== undefined) yield [this.#k0 as Key, this.#s0]
  }
}

class VcGroup extends Group {
  readonly vals: Record<string, Key>
  readonly values = new ValSet()
  /** evidence before an incident opens: one record per new distinct value, EVIDENCE_FIRST at most */
  ev: Ev[] | undefined
  constructor (key: Key, actor: Actor, vals: Record<string, Key>) { super(key, actor); this.vals = vals }
}

export class ValueCount extends GroupCorrelation<VcGroup> {
  readonly evictKind = 'value_count'

  protected newGroup (actor: Actor, key: Key, c: Cols, b: number): VcGroup {
    return new VcGroup(key, actor, this.groupVals(actor, c, b))
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
    if (s !== undefined) {
      s.count += countAt(c, b)
      if (t > s.last) s.last = t
      if (t < s.first) s.first = t
    } else {
      if (t < g.last - this.spec.timespanMs) return
      g.values.set(v, { first: t, last: t, count: countAt(c, b) })
      let grew = VALUE_BYTES
      if (g.ev === undefined) { g.ev = [evidenceAt(actor, c, b, t)]; grew += BYTES.evidence } else if (g.ev.length < EVIDENCE_FIRST) { g.ev.push(evidenceAt(actor, c, b, t)); grew += BYTES.evidence }
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
    for (const [v, s] of g.values) inc.seed(v, s, isPort && typeof v === 'number' ? v : -1, typeof src === 'string' ? src : undefined, actor.hostId, actor.hostname)
    g.open = this.ctx.incidents.open(actor, this, key, inc, (g.ev ?? []).filter(e => e.t >= cutoff), nowWall)
    g.values.clear()
    g.ev = undefined
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
    for (const [, s] of g.values) if (s.last >= cutoff) live++
    return live < spec.min
  }
}
