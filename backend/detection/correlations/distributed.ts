import type { Actor } from '../actors.js'
import { BudgetNode, BYTES, strBytes, type NodeOwner } from '../budget.js'
import { cellKey, cellStr, countAt, evidenceAt, type Key } from '../cells.js'
import { EVIDENCE_FIRST, Incident, type Ev } from '../incident.js'
import type { IncidentOwner, OpenIncident } from '../lifecycle.js'
import type { Cols } from '../projector.js'
import { HOST_FIELD, type CorrelationSpec, type SourcesSpec } from '../rules/compile.js'
import { StatSlab } from '../stat-slab.js'
import { Correlation, type CorrelationContext } from './correlation.js'
import type { ValueCount } from './value-count.js'

// A distributed scan of one host: the union of the values (ports) probed by
// sources that each stay under the single-source rule's threshold (`below`).
// Records only gather here; whether the union crossed is decided once per
// batch, in settle(). A source keeps at most as many ports as either
// threshold: with that many it is over the single-source rule and no longer
// qualifies, so more of its ports could never count.

/** a (source, port) pair: its stats, and its share of the port's reference count */
const PAIR_BYTES = BYTES.entry + BYTES.valStat + BYTES.entry / 2

/** The ports one source probed on this host: the unit the budget evicts. */
class SrcPorts extends BudgetNode {
  readonly src: string
  readonly actor: Actor
  /** each port's slot in the correlation's StatSlab */
  readonly ports = new Map<Key, number>()
  constructor (src: string, actor: Actor) { super(); this.src = src; this.actor = actor }
}

class DistState {
  readonly bySrc = new Map<string, SrcPorts>()
  /** how many sources hold each value */
  readonly portRefs = new Map<Key, number>()
  last = -Infinity
  lastWall = 0
  /** waiting for settle() */
  dirty = false
  recvAt = 0
  readonly ev: Ev[] = []
  open: OpenIncident | undefined
}

export class Distributed extends Correlation<DistState> implements IncidentOwner, NodeOwner {
  readonly evictKind = 'distributed'
  readonly srcSlot: number
  /** the single-source rule a source must stay under; set once every rule exists */
  below: ValueCount | undefined
  /** every (source, port) pair's statistics */
  readonly #slab = new StatSlab()

  constructor (spec: CorrelationSpec, ctx: CorrelationContext, slot: (field: string) => number) {
    super(spec, ctx, slot)
    this.srcSlot = slot((spec.sources as SourcesSpec).field)
  }

  protected fresh (): DistState {
    return new DistState()
  }

  record (actor: Actor, c: Cols, b: number, t: number, nowWall: number, recvAt: number): void {
    const src = cellStr(c, b + this.srcSlot)
    const port = cellKey(c, b + this.fieldSlot)
    if (src === undefined || port === undefined) return
    const st = this.state(actor)
    if (t > st.last) st.last = t
    st.lastWall = nowWall
    if (st.open !== undefined) {
      if (this.#qualifies(actor, src)) this.ctx.incidents.observe(st.open, port, c, b, t, nowWall)
      return
    }
    if (t < st.last - this.spec.timespanMs) return
    const budget = this.ctx.budget
    let sp = st.bySrc.get(src)
    if (sp === undefined) {
      if (st.bySrc.size >= this.ctx.maxGroups) { this.ctx.stats.stateOverflow++; return }
      sp = new SrcPorts(src, actor)
      st.bySrc.set(src, sp)
      budget.link(sp, this, BYTES.group + strBytes(src), nowWall)
    } else budget.touch(sp, nowWall)
    const m = sp.ports
    const s = m.get(port)
    if (s !== undefined) {
      this.#slab.count[s] += countAt(c, b)
      if (t > this.#slab.last[s]) this.#slab.last[s] = t
      return
    }
    if (m.size >= Math.max(this.spec.min, this.below?.spec.min ?? 0)) return
    m.set(port, this.#slab.alloc(t, t, countAt(c, b)))
    st.portRefs.set(port, (st.portRefs.get(port) ?? 0) + 1)
    budget.resize(sp, PAIR_BYTES)
    if (st.ev.length < EVIDENCE_FIRST) { st.ev.push(evidenceAt(actor, c, b, t)); budget.resize(sp, BYTES.evidence) }
    if (!st.dirty) { st.dirty = true; st.recvAt = recvAt; this.ctx.unsettled.push(this) }
  }

  #qualifies (actor: Actor, src: string): boolean {
    return this.below === undefined || this.below.under(actor, src)
  }

  /** After the batch: did the qualifying sources' union cross? */
  settle (actor: Actor, nowWall: number): void {
    const st = this.state(actor)
    st.dirty = false
    const spec = this.spec
    const minSources = spec.sources?.min ?? 1
    if (st.open !== undefined || st.portRefs.size < spec.min || st.bySrc.size < minSources) return
    this.#evict(st)
    if (st.portRefs.size < spec.min || st.bySrc.size < minSources) return
    const qualifying: string[] = []
    const union = new Set<Key>()
    for (const [src, sp] of st.bySrc) {
      if (!this.#qualifies(actor, src)) continue
      qualifying.push(src)
      for (const p of sp.ports.keys()) union.add(p)
    }
    if (union.size < spec.min || qualifying.length < minSources) return
    const inc = new Incident(spec, `${actor.hostId}\u0001`, { [HOST_FIELD]: actor.hostId }, nowWall, st.recvAt)
    for (const src of qualifying) {
      for (const [p, s] of (st.bySrc.get(src) as SrcPorts).ports) inc.seed(p, this.#slab.stat(s), typeof p === 'number' ? p : -1, src, actor.hostId, actor.hostname)
    }
    const q = new Set(qualifying)
    const evs = st.ev.filter(e => e.sip !== undefined && q.has(e.sip))
    this.#clear(st)
    st.open = this.ctx.incidents.open(actor, this, '', inc, evs, nowWall)
  }

  /** Drop the pairs that fell out of the window. */
  #evict (st: DistState): void {
    const cutoff = st.last - this.spec.timespanMs
    for (const sp of st.bySrc.values()) {
      let gone = 0
      for (const [p, s] of sp.ports) {
        if (this.#slab.last[s] >= cutoff) continue
        sp.ports.delete(p)
        this.#slab.release(s)
        this.#unref(st, p)
        gone++
      }
      if (sp.ports.size === 0) this.#drop(st, sp)
      else if (gone > 0) this.ctx.budget.resize(sp, -gone * PAIR_BYTES)
    }
  }

  #unref (st: DistState, p: Key): void {
    const n = (st.portRefs.get(p) ?? 1) - 1
    if (n <= 0) st.portRefs.delete(p)
    else st.portRefs.set(p, n)
  }

  #drop (st: DistState, sp: SrcPorts): void {
    this.#free(sp)
    st.bySrc.delete(sp.src)
    this.ctx.budget.unlink(sp)
  }

  /** Give a source's slots back. */
  #free (sp: SrcPorts): void {
    for (const s of sp.ports.values()) this.#slab.release(s)
    sp.ports.clear()
  }

  #clear (st: DistState): void {
    for (const sp of st.bySrc.values()) { this.#free(sp); this.ctx.budget.unlink(sp) }
    st.bySrc.clear()
    st.portRefs.clear()
    st.ev.length = 0
  }

  /** The budget let this source go: its ports leave the union. */
  evict (node: BudgetNode): void {
    const sp = node as SrcPorts
    const st = this.stateOf(sp.actor)
    if (st === undefined || st.bySrc.get(sp.src) !== sp) { this.ctx.budget.unlink(sp); return }
    for (const p of sp.ports.keys()) this.#unref(st, p)
    this.#drop(st, sp)
  }

  release (actor: Actor): void {
    const st = this.stateOf(actor)
    if (st !== undefined) st.open = undefined
  }

  gc (actor: Actor, nowWall: number): number {
    const d = this.stateOf(actor)
    if (d === undefined) return 0
    if (d.open !== undefined) return 1
    const span = this.spec.timespanMs
    if (d.last < actor.clock - span || nowWall - d.lastWall > span) this.#clear(d)
    else this.#evict(d)
    return d.bySrc.size
  }
}
