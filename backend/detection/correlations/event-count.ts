import type { Actor } from '../actors.js'
import { BYTES } from '../budget.js'
import { cellKey, countAt, evidenceAt, type Key } from '../cells.js'
import { EVIDENCE_FIRST, Incident, type Ev } from '../incident.js'
import type { Cols } from '../projector.js'
import { Group, GroupCorrelation } from './correlation.js'

// event_count, host stage (and a standalone detection rule, which is an
// event_count of one): at least `min` events per group within the window.
// The times of the last `min` events sit in a ring; the group crosses when
// the oldest of them is still inside the window. A record that stands for
// `count` events (a folded flow: its repeats within the agent's fold window,
// `time` the last one's) counts as that many at its time.

export class EcGroup extends Group {
  readonly vals: Record<string, Key>
  readonly ring: Float64Array
  idx = 0
  n = 0
  readonly ev: Ev[] = []
  /** temporal kinds: per referenced rule, when it last matched (temporal_ordered: when the chain through it started) */
  steps: Float64Array | undefined = undefined
  constructor (key: Key, actor: Actor, vals: Record<string, Key>, size: number) { super(key, actor); this.vals = vals; this.ring = new Float64Array(size) }
}

export class EventCount extends GroupCorrelation<EcGroup> {
  readonly evictKind = 'event_count'

  protected newGroup (actor: Actor, key: Key, c: Cols, b: number): EcGroup {
    return new EcGroup(key, actor, this.groupVals(actor, c, b), this.spec.min)
  }

  /** the ring of times: a typed array, its header and 8 bytes a slot */
  protected groupBytes (g: EcGroup): number {
    return 128 + g.ring.byteLength
  }

  /** Whether the group may cross (the temporal kinds also need every rule matched). */
  protected ready (_g: EcGroup, _cutoff: number): boolean {
    return true
  }

  record (actor: Actor, c: Cols, b: number, t: number, nowWall: number, recvAt: number): void {
    const key = this.key(c, b)
    if (key === undefined) return
    const g = this.group(actor, key, c, b, nowWall)
    if (g === undefined) return
    g.lastWall = nowWall
    if (t > g.last) g.last = t
    const v = this.fieldSlot >= 0 ? cellKey(c, b + this.fieldSlot) : undefined
    if (g.open !== undefined) { this.ctx.incidents.observe(g.open, v, c, b, t, nowWall); return }
    const size = g.ring.length
    const n = countAt(c, b)
    // a folded record may cross part way through its events: the ones in the
    // window before it, plus all of its own, are what the crossing counts
    let before = size - 1
    if (n > 1) {
      const from = t - this.spec.timespanMs
      before = 0
      for (let i = 0; i < size; i++) if (g.ring[i] >= from) before++
    }
    for (let k = Math.min(n, size); k > 0; k--) {
      g.ring[g.idx] = t
      g.idx = (g.idx + 1) % size
    }
    g.n += n
    if (g.ev.length < EVIDENCE_FIRST) { g.ev.push(evidenceAt(actor, c, b, t)); this.ctx.budget.resize(g, BYTES.evidence) }
    if (g.n < size) return
    const oldest = g.ring[g.idx]
    const cutoff = t - this.spec.timespanMs
    if (oldest < cutoff || !this.ready(g, cutoff)) return
    this.opened(g)
    const inc = new Incident(this.spec, `${actor.hostId}\u0001${String(key)}`, g.vals, nowWall, recvAt)
    const evs = g.ev.filter(e => e.t >= cutoff)
    if (!evs.some(e => e.t === t)) evs.push(evidenceAt(actor, c, b, t))
    for (const e of evs) inc.observe(v, e.dport, e.sip, actor.hostId, actor.hostname, e.t, 1, nowWall)
    inc.records = Math.max(inc.records, before + n)
    if (oldest < inc.firstSeen) inc.firstSeen = oldest
    g.open = this.ctx.incidents.open(actor, this, key, inc, evs, nowWall)
    g.ev.length = 0
  }
}
