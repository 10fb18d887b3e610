import type { Actor } from '../actors.js'
import { cellKey, cellStr, evidenceAt, type Key } from '../cells.js'
import { EVIDENCE_FIRST, Incident, type Ev, type ValStat } from '../incident.js'
import type { IncidentOwner, OpenIncident } from '../lifecycle.js'
import type { Cols } from '../projector.js'
import { HOST_FIELD, type CorrelationSpec, type SourcesSpec } from '../rules/compile.js'
import { Correlation, type CorrelationContext } from './correlation.js'
import type { ValueCount } from './value-count.js'

// A distributed scan of one host: the union of the values (ports) probed by
// sources that each stay under the single-source rule's threshold (`below`).
// Records only gather here; whether the union crossed is decided once per
// batch, in settle().

class DistState {
  readonly bySrc = new Map<string, Map<Key, ValStat>>()
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

export class Distributed extends Correlation<DistState> implements IncidentOwner {
  readonly srcSlot: number
  /** the single-source rule a source must stay under; set once every rule exists */
  below: ValueCount | undefined

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
    let m = st.bySrc.get(src)
    if (m === undefined) {
      if (st.bySrc.size >= this.ctx.maxGroups) { this.ctx.stats.stateOverflow++; return }
      m = new Map()
      st.bySrc.set(src, m)
    }
    const s = m.get(port)
    if (s !== undefined) {
      s.count++
      if (t > s.last) s.last = t
      return
    }
    m.set(port, { first: t, last: t, count: 1 })
    st.portRefs.set(port, (st.portRefs.get(port) ?? 0) + 1)
    if (st.ev.length < EVIDENCE_FIRST) st.ev.push(evidenceAt(actor, c, b, t))
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
    for (const [src, m] of st.bySrc) {
      if (!this.#qualifies(actor, src)) continue
      qualifying.push(src)
      for (const p of m.keys()) union.add(p)
    }
    if (union.size < spec.min || qualifying.length < minSources) return
    const inc = new Incident(spec, `${actor.hostId}\u0001`, { [HOST_FIELD]: actor.hostId }, nowWall, st.recvAt)
    for (const src of qualifying) {
      for (const [p, s] of st.bySrc.get(src) as Map<Key, ValStat>) inc.seed(p, s, typeof p === 'number' ? p : -1, src, actor.hostId, actor.hostname)
    }
    const q = new Set(qualifying)
    st.open = this.ctx.incidents.open(actor, this, '', inc, st.ev.filter(e => e.sip !== undefined && q.has(e.sip)), nowWall)
    st.bySrc.clear()
    st.portRefs.clear()
    st.ev.length = 0
  }

  #evict (st: DistState): void {
    const cutoff = st.last - this.spec.timespanMs
    for (const [src, m] of st.bySrc) {
      for (const [p, s] of m) {
        if (s.last >= cutoff) continue
        m.delete(p)
        const n = (st.portRefs.get(p) ?? 1) - 1
        if (n <= 0) st.portRefs.delete(p)
        else st.portRefs.set(p, n)
      }
      if (m.size === 0) st.bySrc.delete(src)
    }
  }

  release (actor: Actor): void {
    const st = this.stateOf(actor)
    if (st !== undefined) st.open = undefined
  }

  gc (actor: Actor, nowWall: number): number {
    const d = this.stateOf(actor)
    if (d === undefined || d.open !== undefined) return 0
    const span = this.spec.timespanMs
    if (d.last < actor.clock - span || nowWall - d.lastWall > span) { d.bySrc.clear(); d.portRefs.clear(); d.ev.length = 0 } else this.#evict(d)
    return d.bySrc.size
  }
}
