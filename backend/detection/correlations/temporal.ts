import type { Actor } from '../actors.js'
import type { Cols } from '../projector.js'
import { EventCount, type EcGroup } from './event-count.js'

// Sigma's temporal correlations, host stage: every referenced rule matched
// in the same group within the timespan (temporal), or in the order the rule
// lists them (temporal_ordered). An event_count of one whose crossing also
// waits for the steps: the group keeps, per referenced rule, when it last
// matched, and for the ordered kind when the chain through it started (a
// step counts only after the step before it, inside the window).

export class Temporal extends EventCount {
  /** the referenced rules' detection indexes, in the order listed */
  readonly #steps = this.spec.detections
  readonly #ordered = this.spec.type === 'temporal_ordered'

  /** Record the row at `b`, matched by detection rule `det`. */
  recordStep (actor: Actor, c: Cols, b: number, t: number, nowWall: number, recvAt: number, det: number): void {
    const key = this.key(c, b)
    if (key === undefined) return
    const g = this.group(actor, key, c, b, nowWall)
    if (g === undefined) return
    const n = this.#steps.length
    const st = g.steps ??= new Float64Array(n).fill(-Infinity)
    const cutoff = t - this.spec.timespanMs
    for (let i = 0; i < n; i++) {
      if (this.#steps[i] !== det) continue
      if (!this.#ordered) st[i] = Math.max(st[i], t)
      else if (i === 0) st[0] = Math.max(st[0], t)
      else if (st[i - 1] >= cutoff && st[i - 1] <= t) st[i] = Math.max(st[i], st[i - 1])
    }
    this.record(actor, c, b, t, nowWall, recvAt)
  }

  protected override ready (g: EcGroup, cutoff: number): boolean {
    const st = g.steps
    if (st === undefined) return false
    if (this.#ordered) return st[st.length - 1] >= cutoff
    for (let i = 0; i < st.length; i++) if (st[i] < cutoff) return false
    return true
  }
}
