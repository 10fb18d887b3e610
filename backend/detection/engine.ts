import type { ErrorCode } from '../../shared/errors.js'
import { buildFinding, type FindingEvent } from './finding.js'
import { EVIDENCE_FIRST, Incident, type Ev, type ValStat } from './incident.js'
import { Projector, ScanError, T_FALSE, T_NUM, T_STR, T_TRUE, type Cols, type ScanLimits } from './projector.js'
import { HOST_FIELD, type CorrelationSpec, type DetectionRule, type RuleSet } from './rules/compile.js'
import { SeqWindow } from './seq.js'

// The host stage of the detection plane. One DetectionEngine per worker
// thread; inside it one actor per host, holding that host's sliding windows.
// Everything here is driven by the caller's clock (nowWall), so the unit
// tests replay exact timelines.

export interface EngineOptions {
  limits: ScanLimits
  productVersion: string
  /** per host and rule: groups beyond this are not tracked (counted in stateOverflow) */
  maxGroups?: number
  /** re-report a fleet (group, value) pair at most this often */
  fleetRefreshMs?: number
  /** out-of-order seqs remembered per host */
  maxSeqAhead?: number
  /** records stamped further than this in the future are clamped to the arrival time */
  maxClockSkewMs?: number
}

export interface BatchInput {
  hostId: string
  hostname?: string
  seq: number
  count: number
  bytes: Uint8Array
  /** wall time the collector received the batch */
  recvAt: number
}

export type BatchOutcome =
  | { status: 'accepted', records: number }
  | { status: 'duplicate' }
  | { status: 'refused', error: ErrorCode, code: number, limit: string, message: string }

/** A (group, value) sighting the fleet stage aggregates across workers. */
export interface FleetDelta {
  rule: number
  group: Array<string | number>
  value: string | number
  host: string
  hostname: string | undefined
  first: number
  last: number
  count: number
  /** the first record, sent with the first report of the pair */
  ev: Ev | undefined
  recvAt: number
}

export interface HostSummary {
  hostId: string
  lastSeq: number
  records: number
  batches: number
  duplicates: number
  refused: number
  gapsSkipped: number
}

export interface EngineStats {
  hosts: number
  batches: number
  records: number
  matched: number
  duplicates: number
  refused: number
  openIncidents: number
  groups: number
  stateOverflow: number
  findings: number
}

// gRPC status codes used in refusals
const INVALID_ARGUMENT = 3
const PERMISSION_DENIED = 7
const RESOURCE_EXHAUSTED = 8

// evidence slots: EVIDENCE_FIELDS order in compile.ts
const S_TIME = 0
const S_ACT = 2
const S_HOST = 3
const S_HOSTNAME = 4
const S_SIP = 5
const S_SPORT = 6
const S_DIP = 7
const S_DPORT = 8
const S_PROTO = 9
const S_DIR = 10

type Key = string | number

class Actor {
  readonly hostId: string
  hostname: string | undefined
  readonly seq: SeqWindow
  clock = -Infinity
  lastWall = 0
  readonly states: unknown[]
  records = 0
  batches = 0
  duplicates = 0
  refused = 0
  touched = false

  constructor (hostId: string, nRules: number, floor: number, maxAhead: number) {
    this.hostId = hostId
    this.states = new Array<unknown>(nRules)
    this.seq = new SeqWindow(floor, maxAhead)
  }
}

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

  /** Drop the values last seen before `cutoff`. */
  prune (cutoff: number): void {
    if (this.#m !== undefined) { for (const [k, s] of this.#m) if (s.last < cutoff) this.#m.delete(k) } else if (this.#s0 !== undefined && this.#s0.last < cutoff) { this.#k0 = undefined; this.#s0 = undefined }
  }

  clear (): void { this.#m = undefined; this.#k0 = undefined; this.#s0 = undefined }

  * [Symbol.iterator] (): IterableIterator<[Key, ValStat]> {
    if (this.#m !== undefined) yield * this.#m
    else if (this.#s0 !== undefined) yield [this.#k0 as Key, this.#s0]
  }
}

class VcGroup {
  readonly vals: Record<string, Key>
  readonly values = new ValSet()
  last = -Infinity
  lastWall = 0
  /** evidence before an incident opens: one record per new distinct value, EVIDENCE_FIRST at most */
  ev: Ev[] | undefined
  open: OpenIncident | undefined
  constructor (vals: Record<string, Key>) { this.vals = vals }
}

class EcGroup {
  readonly vals: Record<string, Key>
  readonly ring: Float64Array
  idx = 0
  n = 0
  last = -Infinity
  lastWall = 0
  readonly ev: Ev[] = []
  open: OpenIncident | undefined
  constructor (vals: Record<string, Key>, size: number) { this.vals = vals; this.ring = new Float64Array(size) }
}

class DistState {
  readonly bySrc = new Map<string, Map<Key, ValStat>>()
  readonly portRefs = new Map<Key, number>()
  last = -Infinity
  lastWall = 0
  dirty = false
  recvAt = 0
  readonly ev: Ev[] = []
  open: OpenIncident | undefined
}

interface FleetLeaf {
  vals: Key[]
  value: Key
  first: number
  last: number
  count: number
  reportedCount: number
  reportedWall: number
  dirty: boolean
  ev: Ev | undefined
  recvAt: number
}

class FleetLocal {
  readonly actor: Actor
  readonly rt: Runtime
  readonly root = new Map<Key, unknown>()
  /** leaves touched since their last report */
  dirty: FleetLeaf[] = []
  queued = false
  leaves = 0
  constructor (actor: Actor, rt: Runtime) { this.actor = actor; this.rt = rt }
}

interface OpenIncident {
  inc: Incident
  actor: Actor
  rt: Runtime
  key: Key
}

type Kind = 'vc' | 'ec' | 'dist' | 'fleet'

interface Runtime {
  spec: CorrelationSpec
  kind: Kind
  /** group-by slots without device.uid (the actor is the host) */
  keySlots: number[]
  keyFields: string[]
  fieldSlot: number
  srcSlot: number
  below: Runtime | undefined
  valueIsHost: boolean
}

function val (c: Cols, i: number): Key | undefined {
  const t = c.typ[i]
  if (t === T_STR) return c.str[i] as string
  if (t === T_NUM) return c.num[i]
  if (t === T_TRUE) return 'true'
  if (t === T_FALSE) return 'false'
  return undefined
}

function numOr (c: Cols, i: number, d: number): number {
  return c.typ[i] === T_NUM ? c.num[i] : d
}

function strOr (c: Cols, i: number): string | undefined {
  return c.typ[i] === T_STR ? c.str[i] : undefined
}

export class DetectionEngine {
  readonly rules: RuleSet
  readonly projector: Projector
  readonly #opts: Required<EngineOptions>
  readonly #actors = new Map<string, Actor>()
  readonly #runtimes: Runtime[]
  /** detections that feed at least one host-side runtime */
  readonly #active: DetectionRule[]
  readonly #open = new Set<OpenIncident>()
  readonly #distDirty: Array<[Actor, Runtime]> = []
  #findings: FindingEvent[] = []
  #fleet: FleetDelta[] = []
  /** fleet states holding leaves touched since their last report */
  #fleetQueue: FleetLocal[] = []
  /** leaves never reported: reported at the end of the batch that created them */
  #fleetFresh: Array<[FleetLocal, FleetLeaf]> = []
  #lastGc = 0
  readonly stats: EngineStats = { hosts: 0, batches: 0, records: 0, matched: 0, duplicates: 0, refused: 0, openIncidents: 0, groups: 0, stateOverflow: 0, findings: 0 }

  constructor (rules: RuleSet, opts: EngineOptions) {
    this.rules = rules
    this.#opts = { maxGroups: 100_000, fleetRefreshMs: 1000, maxSeqAhead: 4096, maxClockSkewMs: 60_000, ...opts }
    this.projector = new Projector(rules.paths, 1024)
    const slot = (f: string): number => this.projector.slot(f)
    this.#runtimes = rules.correlations.map(spec => {
      const keyFields = spec.groupBy.filter(f => f !== HOST_FIELD)
      const kind: Kind = spec.stage === 'fleet' ? 'fleet' : spec.sources !== undefined ? 'dist' : spec.type === 'value_count' ? 'vc' : 'ec'
      return {
        spec,
        kind,
        keySlots: keyFields.map(slot),
        keyFields,
        fieldSlot: spec.field !== undefined ? slot(spec.field) : -1,
        srcSlot: spec.sources !== undefined ? slot(spec.sources.field) : -1,
        below: undefined,
        valueIsHost: spec.field === HOST_FIELD,
      }
    })
    for (const rt of this.#runtimes) {
      if (rt.spec.sources?.below !== undefined) rt.below = this.#runtimes[rt.spec.sources.below]
    }
    this.#active = rules.detections.filter(d => d.correlations.length > 0)
  }

  /** Seed the dedup floors persisted by an earlier run. */
  restoreSeqs (entries: Iterable<[string, number]>): void {
    for (const [hostId, seq] of entries) this.#actor(hostId).seq.floor = seq
  }

  /** A batch the collector refused: its seq is spent, so the dedup window moves past it. */
  skipSeq (hostId: string, seq: number): void {
    this.#actor(hostId).seq.accept(seq)
  }

  #actor (hostId: string): Actor {
    let a = this.#actors.get(hostId)
    if (a === undefined) {
      a = new Actor(hostId, this.#runtimes.length, 0, this.#opts.maxSeqAhead)
      this.#actors.set(hostId, a)
      this.stats.hosts++
    }
    return a
  }

  processBatch (input: BatchInput, nowWall: number): BatchOutcome {
    const actor = this.#actor(input.hostId)
    actor.touched = true
    actor.lastWall = nowWall
    if (input.hostname !== undefined && input.hostname !== '') actor.hostname = input.hostname
    if (!actor.seq.accept(input.seq)) {
      actor.duplicates++
      this.stats.duplicates++
      return { status: 'duplicate' }
    }
    this.stats.batches++
    actor.batches++
    let n: number
    try {
      n = this.projector.scan(input.bytes, this.#opts.limits)
    } catch (err) {
      if (!(err instanceof ScanError)) throw err
      actor.refused++
      this.stats.refused++
      const limit = err.limit
      return {
        status: 'refused',
        error: limit !== undefined ? 'PICKET_ERR_LIMIT' : 'PICKET_ERR_DECODE',
        code: limit === 'max_records' ? RESOURCE_EXHAUSTED : INVALID_ARGUMENT,
        limit: limit ?? '',
        message: limit !== undefined
          ? `${err.message}; the batch was refused: make the agent send smaller or flatter records, or raise the collector's --${limit.replace(/_/g, '-')}`
          : `${err.message}; the batch was refused: records must be one msgpack array of OCSF objects (shared/codec.ts packRecords)`,
      }
    }
    const c = this.projector.cols
    const S = c.S
    if (n !== input.count) {
      actor.refused++
      this.stats.refused++
      return { status: 'refused', error: 'PICKET_ERR_DECODE', code: INVALID_ARGUMENT, limit: '', message: `the batch says count ${input.count} but records holds ${n}; the batch was refused: set count to the number of records` }
    }
    for (let r = 0; r < n; r++) {
      const b = r * S
      if (c.typ[b + S_HOST] === T_STR && c.str[b + S_HOST] !== input.hostId) {
        actor.refused++
        this.stats.refused++
        return {
          status: 'refused', error: 'PICKET_ERR_HOST_ID', code: PERMISSION_DENIED, limit: '',
          message: `record ${r} has device.uid '${String(c.str[b + S_HOST]).slice(0, 128)}' but the batch is from host '${input.hostId}'; the batch was refused: an agent ships only its own records`,
        }
      }
    }
    if (actor.hostname === undefined && n > 0 && c.typ[S_HOSTNAME] === T_STR) actor.hostname = c.str[S_HOSTNAME]
    this.#rows(actor, n, input.recvAt, nowWall)
    actor.records += n
    this.stats.records += n
    this.#afterBatch(nowWall)
    return { status: 'accepted', records: n }
  }

  #rows (actor: Actor, n: number, recvAt: number, nowWall: number): void {
    const c = this.projector.cols
    const S = c.S
    const active = this.#active
    const rts = this.#runtimes
    const future = nowWall + this.#opts.maxClockSkewMs
    let matched = 0
    for (let r = 0; r < n; r++) {
      const b = r * S
      let t = c.typ[b + S_TIME] === T_NUM ? c.num[b + S_TIME] : recvAt
      if (t > future) t = recvAt
      if (t > actor.clock) actor.clock = t
      for (let d = 0; d < active.length; d++) {
        const det = active[d]
        if (!det.match(c, b)) continue
        matched++
        const cs = det.correlations
        for (let k = 0; k < cs.length; k++) {
          const rt = rts[cs[k]]
          switch (rt.kind) {
            case 'vc': this.#vc(actor, rt, c, b, t, nowWall, recvAt); break
            case 'ec': this.#ec(actor, rt, c, b, t, nowWall, recvAt); break
            case 'dist': this.#dist(actor, rt, c, b, t, nowWall, recvAt); break
            case 'fleet': this.#fleetRecord(actor, rt, c, b, t, recvAt); break
          }
        }
      }
    }
    this.stats.matched += matched
  }

  #key (rt: Runtime, c: Cols, b: number): Key | undefined {
    const ks = rt.keySlots
    if (ks.length === 0) return ''
    if (ks.length === 1) return val(c, b + ks[0])
    let s = ''
    for (let i = 0; i < ks.length; i++) {
      const v = val(c, b + ks[i])
      if (v === undefined) return undefined
      s += (i === 0 ? '' : '\u0001') + String(v)
    }
    return s
  }

  #groupVals (actor: Actor, rt: Runtime, c: Cols, b: number): Record<string, Key> {
    const out: Record<string, Key> = {}
    for (const f of rt.spec.groupBy) out[f] = f === HOST_FIELD ? actor.hostId : (val(c, b + this.projector.slot(f)) ?? '')
    return out
  }

  #ev (actor: Actor, c: Cols, b: number, t: number): Ev {
    return {
      t,
      host: actor.hostId,
      hostname: actor.hostname,
      sip: strOr(c, b + S_SIP),
      sport: numOr(c, b + S_SPORT, -1),
      dip: strOr(c, b + S_DIP),
      dport: numOr(c, b + S_DPORT, -1),
      act: numOr(c, b + S_ACT, 0),
      proto: numOr(c, b + S_PROTO, -1),
      dir: numOr(c, b + S_DIR, -1),
    }
  }

  #observe (oi: OpenIncident, value: Key | undefined, c: Cols, b: number, t: number, nowWall: number): void {
    const a = oi.actor
    oi.inc.observe(value, numOr(c, b + S_DPORT, -1), strOr(c, b + S_SIP), a.hostId, a.hostname, t, 1, nowWall)
    oi.inc.evidence(this.#ev(a, c, b, t))
  }

  #states<T> (actor: Actor, rt: Runtime, make: () => T): T {
    let s = actor.states[rt.spec.index] as T | undefined
    if (s === undefined) { s = make(); actor.states[rt.spec.index] = s }
    return s
  }

  // value_count, host stage: distinct values of `field` per group over a sliding window
  #vc (actor: Actor, rt: Runtime, c: Cols, b: number, t: number, nowWall: number, recvAt: number): void {
    const key = this.#key(rt, c, b)
    if (key === undefined) return
    const v = val(c, b + rt.fieldSlot)
    if (v === undefined) return
    const groups = this.#states(actor, rt, () => new Map<Key, VcGroup>())
    let g = groups.get(key)
    if (g === undefined) {
      if (groups.size >= this.#opts.maxGroups) { this.stats.stateOverflow++; return }
      g = new VcGroup(this.#groupVals(actor, rt, c, b))
      groups.set(key, g)
    }
    g.lastWall = nowWall
    if (t > g.last) g.last = t
    if (g.open !== undefined) { this.#observe(g.open, v, c, b, t, nowWall); return }
    const s = g.values.get(v)
    if (s !== undefined) {
      s.count++
      if (t > s.last) s.last = t
      if (t < s.first) s.first = t
    } else {
      if (t < g.last - rt.spec.timespanMs) return
      g.values.set(v, { first: t, last: t, count: 1 })
      if (g.ev === undefined) g.ev = [this.#ev(actor, c, b, t)]
      else if (g.ev.length < EVIDENCE_FIRST) g.ev.push(this.#ev(actor, c, b, t))
      if (g.values.size >= rt.spec.min) this.#vcCheck(actor, rt, g, key, nowWall, recvAt)
    }
    // evidence before an incident: one record per new distinct value only.
    // A repeat of a value says nothing new, and most groups (a client on one
    // port) never grow past one value: keeping their repeats cost ~10 records
    // per group, the bulk of a host's state at fleet scale.
  }

  #vcCheck (actor: Actor, rt: Runtime, g: VcGroup, key: Key, nowWall: number, recvAt: number): void {
    const cutoff = g.last - rt.spec.timespanMs
    g.values.prune(cutoff)
    if (g.values.size < rt.spec.min) return
    const inc = new Incident(rt.spec, `${actor.hostId}\u0001${String(key)}`, g.vals, nowWall, recvAt)
    const src = g.vals['src_endpoint.ip']
    const isPort = rt.spec.field === 'dst_endpoint.port'
    for (const [v, s] of g.values) inc.seed(v, s, isPort && typeof v === 'number' ? v : -1, typeof src === 'string' ? src : undefined, actor.hostId, actor.hostname)
    g.open = this.#openIncident(actor, rt, key, inc, (g.ev ?? []).filter(e => e.t >= cutoff), nowWall)
    g.values.clear()
    g.ev = undefined
  }

  #openIncident (actor: Actor, rt: Runtime, key: Key, inc: Incident, evs: Ev[], nowWall: number): OpenIncident {
    for (const e of evs) inc.evidence(e)
    const oi: OpenIncident = { inc, actor, rt, key }
    this.#open.add(oi)
    this.stats.openIncidents = this.#open.size
    this.#emit(inc, 'create', nowWall)
    return oi
  }

  #emit (inc: Incident, activity: 'create' | 'update' | 'close', nowWall: number): void {
    this.#findings.push(buildFinding(inc, activity, nowWall, this.#opts.productVersion))
    inc.lastEmitWall = nowWall
    inc.dirty = false
    inc.emitted = true
    this.stats.findings++
  }

  // event_count, host stage: at least `min` events per group within the window
  #ec (actor: Actor, rt: Runtime, c: Cols, b: number, t: number, nowWall: number, recvAt: number): void {
    const key = this.#key(rt, c, b)
    if (key === undefined) return
    const groups = this.#states(actor, rt, () => new Map<Key, EcGroup>())
    let g = groups.get(key)
    if (g === undefined) {
      if (groups.size >= this.#opts.maxGroups) { this.stats.stateOverflow++; return }
      g = new EcGroup(this.#groupVals(actor, rt, c, b), rt.spec.min)
      groups.set(key, g)
    }
    g.lastWall = nowWall
    if (t > g.last) g.last = t
    const v = rt.fieldSlot >= 0 ? val(c, b + rt.fieldSlot) : undefined
    if (g.open !== undefined) { this.#observe(g.open, v, c, b, t, nowWall); return }
    const size = g.ring.length
    g.ring[g.idx] = t
    g.idx = (g.idx + 1) % size
    g.n++
    if (g.ev.length < EVIDENCE_FIRST) g.ev.push(this.#ev(actor, c, b, t))
    if (g.n < size) return
    const oldest = g.ring[g.idx]
    const cutoff = t - rt.spec.timespanMs
    if (oldest < cutoff) return
    const inc = new Incident(rt.spec, `${actor.hostId}\u0001${String(key)}`, g.vals, nowWall, recvAt)
    const evs = g.ev.filter(e => e.t >= cutoff)
    if (!evs.some(e => e.t === t)) evs.push(this.#ev(actor, c, b, t))
    for (const e of evs) inc.observe(v, e.dport, e.sip, actor.hostId, actor.hostname, e.t, 1, nowWall)
    inc.records = Math.max(inc.records, size)
    if (oldest < inc.firstSeen) inc.firstSeen = oldest
    g.open = this.#openIncident(actor, rt, key, inc, evs, nowWall)
    g.ev.length = 0
  }

  // distributed scan: union of ports over sources that each stay under `below`
  #dist (actor: Actor, rt: Runtime, c: Cols, b: number, t: number, nowWall: number, recvAt: number): void {
    const src = strOr(c, b + rt.srcSlot)
    const port = val(c, b + rt.fieldSlot)
    if (src === undefined || port === undefined) return
    const st = this.#states(actor, rt, () => new DistState())
    if (t > st.last) st.last = t
    st.lastWall = nowWall
    if (st.open !== undefined) {
      if (this.#qualifies(actor, rt, src)) this.#observe(st.open, port, c, b, t, nowWall)
      return
    }
    if (t < st.last - rt.spec.timespanMs) return
    let m = st.bySrc.get(src)
    if (m === undefined) {
      if (st.bySrc.size >= this.#opts.maxGroups) { this.stats.stateOverflow++; return }
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
    if (st.ev.length < EVIDENCE_FIRST) st.ev.push(this.#ev(actor, c, b, t))
    if (!st.dirty) { st.dirty = true; st.recvAt = recvAt; this.#distDirty.push([actor, rt]) }
  }

  /** Does `src` stay under the single-source rule's threshold on this host? */
  #qualifies (actor: Actor, rt: Runtime, src: string): boolean {
    const below = rt.below
    if (below === undefined) return true
    const groups = actor.states[below.spec.index] as Map<Key, VcGroup> | undefined
    const g = groups?.get(src)
    if (g === undefined) return true
    if (g.open !== undefined) return false
    if (g.values.size < below.spec.min) return true
    const cutoff = g.last - below.spec.timespanMs
    let live = 0
    for (const [, s] of g.values) if (s.last >= cutoff) live++
    return live < below.spec.min
  }

  #distEvict (st: DistState, rt: Runtime): void {
    const cutoff = st.last - rt.spec.timespanMs
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

  #distCheck (actor: Actor, rt: Runtime, nowWall: number): void {
    const st = actor.states[rt.spec.index] as DistState
    st.dirty = false
    const spec = rt.spec
    const minSources = spec.sources?.min ?? 1
    if (st.open !== undefined || st.portRefs.size < spec.min || st.bySrc.size < minSources) return
    this.#distEvict(st, rt)
    if (st.portRefs.size < spec.min || st.bySrc.size < minSources) return
    const qualifying: string[] = []
    const union = new Set<Key>()
    for (const [src, m] of st.bySrc) {
      if (!this.#qualifies(actor, rt, src)) continue
      qualifying.push(src)
      for (const p of m.keys()) union.add(p)
    }
    if (union.size < spec.min || qualifying.length < minSources) return
    const inc = new Incident(spec, `${actor.hostId}\u0001`, { [HOST_FIELD]: actor.hostId }, nowWall, st.recvAt)
    for (const src of qualifying) {
      for (const [p, s] of st.bySrc.get(src) as Map<Key, ValStat>) inc.seed(p, s, typeof p === 'number' ? p : -1, src, actor.hostId, actor.hostname)
    }
    const q = new Set(qualifying)
    st.open = this.#openIncident(actor, rt, '', inc, st.ev.filter(e => e.sip !== undefined && q.has(e.sip)), nowWall)
    st.bySrc.clear()
    st.portRefs.clear()
    st.ev.length = 0
  }

  // fleet stage, worker side: report (group, value) sightings, not records
  #fleetRecord (actor: Actor, rt: Runtime, c: Cols, b: number, t: number, recvAt: number): void {
    const st = this.#states(actor, rt, () => new FleetLocal(actor, rt))
    const ks = rt.keySlots
    let m: Map<Key, unknown> = st.root
    const last = ks.length - (rt.valueIsHost ? 1 : 0)
    for (let i = 0; i < last; i++) {
      const v = val(c, b + ks[i])
      if (v === undefined) return
      let next = m.get(v) as Map<Key, unknown> | undefined
      if (next === undefined) { next = new Map(); m.set(v, next) }
      m = next
    }
    const leafKey = rt.valueIsHost ? val(c, b + ks[ks.length - 1]) : val(c, b + rt.fieldSlot)
    if (leafKey === undefined) return
    let leaf = m.get(leafKey) as FleetLeaf | undefined
    if (leaf === undefined) {
      if (st.leaves >= this.#opts.maxGroups) { this.stats.stateOverflow++; return }
      const vals: Key[] = []
      for (let i = 0; i < ks.length; i++) vals.push(val(c, b + ks[i]) as Key)
      leaf = { vals, value: rt.valueIsHost ? actor.hostId : leafKey, first: t, last: t, count: 0, reportedCount: 0, reportedWall: -1, dirty: false, ev: this.#ev(actor, c, b, t), recvAt }
      m.set(leafKey, leaf)
      st.leaves++
      this.#fleetFresh.push([st, leaf])
    }
    leaf.count++
    if (t > leaf.last) leaf.last = t
    if (t < leaf.first) leaf.first = t
    if (!leaf.dirty) {
      leaf.dirty = true
      leaf.recvAt = recvAt
      st.dirty.push(leaf)
      if (!st.queued) { st.queued = true; this.#fleetQueue.push(st) }
    }
  }

  #report (st: FleetLocal, leaf: FleetLeaf, nowWall: number): void {
    const actor = st.actor
    this.#fleet.push({
      rule: st.rt.spec.index, group: leaf.vals, value: leaf.value, host: actor.hostId, hostname: actor.hostname,
      first: leaf.first, last: leaf.last, count: leaf.count - leaf.reportedCount,
      ev: leaf.reportedWall < 0 ? leaf.ev : undefined, recvAt: leaf.recvAt,
    })
    leaf.reportedWall = nowWall
    leaf.reportedCount = leaf.count
    leaf.ev = undefined
  }

  /** New sightings go out with the batch that made them: the fleet stage sees a sweep without delay. */
  #flushFresh (nowWall: number): void {
    for (const [st, leaf] of this.#fleetFresh) if (leaf.reportedWall < 0) this.#report(st, leaf, nowWall)
    this.#fleetFresh.length = 0
  }

  /** Refreshes of known sightings (counts, last seen), at most once per fleetRefreshMs each. */
  #flushFleet (nowWall: number, force: boolean): void {
    this.#flushFresh(nowWall)
    const queue = this.#fleetQueue
    this.#fleetQueue = []
    const refresh = this.#opts.fleetRefreshMs
    for (const st of queue) {
      const keep: FleetLeaf[] = []
      for (const leaf of st.dirty) {
        if (leaf.count === leaf.reportedCount) { leaf.dirty = false; continue }
        if (!force && nowWall - leaf.reportedWall < refresh) { keep.push(leaf); continue }
        this.#report(st, leaf, nowWall)
        leaf.dirty = false
      }
      st.dirty = keep
      if (keep.length > 0) this.#fleetQueue.push(st)
      else st.queued = false
    }
  }

  #afterBatch (nowWall: number): void {
    if (this.#distDirty.length > 0) {
      for (const [actor, rt] of this.#distDirty) this.#distCheck(actor, rt, nowWall)
      this.#distDirty.length = 0
    }
    if (this.#fleetFresh.length > 0) this.#flushFresh(nowWall)
  }

  /** Periodic work: incident updates and closes, fleet refreshes, state expiry. */
  tick (nowWall: number): void {
    for (const oi of this.#open) {
      const inc = oi.inc
      const spec = inc.spec
      if (nowWall - inc.lastWall >= spec.quietMs || oi.actor.clock - inc.lastSeen >= spec.quietMs) {
        this.#emit(inc, 'close', nowWall)
        this.#open.delete(oi)
        this.#release(oi)
      } else if (inc.dirty && nowWall - inc.lastEmitWall >= spec.updateIntervalMs) {
        this.#emit(inc, 'update', nowWall)
      }
    }
    this.stats.openIncidents = this.#open.size
    if (this.#fleetQueue.length > 0) this.#flushFleet(nowWall, false)
    if (nowWall - this.#lastGc >= 1000) {
      this.#lastGc = nowWall
      this.#gc(nowWall)
    }
  }

  #release (oi: OpenIncident): void {
    const st = oi.actor.states[oi.rt.spec.index]
    if (oi.rt.kind === 'dist') { (st as DistState).open = undefined; return }
    ;(st as Map<Key, VcGroup | EcGroup>).delete(oi.key)
  }

  #gc (nowWall: number): void {
    let groups = 0
    for (const actor of this.#actors.values()) {
      for (const rt of this.#runtimes) {
        const st = actor.states[rt.spec.index]
        if (st === undefined) continue
        const span = rt.spec.timespanMs
        const cutoff = actor.clock - span
        if (rt.kind === 'vc' || rt.kind === 'ec') {
          const m = st as Map<Key, VcGroup | EcGroup>
          for (const [k, g] of m) {
            if (g.open === undefined && (g.last < cutoff || nowWall - g.lastWall > span)) m.delete(k)
          }
          groups += m.size
        } else if (rt.kind === 'dist') {
          const d = st as DistState
          if (d.open === undefined) {
            if (d.last < cutoff || nowWall - d.lastWall > span) { d.bySrc.clear(); d.portRefs.clear(); d.ev.length = 0 } else this.#distEvict(d, rt)
            groups += d.bySrc.size
          }
        } else {
          const f = st as FleetLocal
          const prune = (m: Map<Key, unknown>, depth: number): void => {
            for (const [k, v] of m) {
              if (depth === 0) {
                const leaf = v as FleetLeaf
                if (!leaf.dirty && leaf.last < cutoff) { m.delete(k); f.leaves-- }
              } else {
                prune(v as Map<Key, unknown>, depth - 1)
                if ((v as Map<Key, unknown>).size === 0) m.delete(k)
              }
            }
          }
          prune(f.root, rt.keySlots.length - (rt.valueIsHost ? 1 : 0))
          groups += f.leaves
        }
      }
    }
    this.stats.groups = groups
  }

  /** Findings and fleet deltas produced since the last call. */
  drain (): { findings: FindingEvent[], fleet: FleetDelta[] } {
    const out = { findings: this.#findings, fleet: this.#fleet }
    this.#findings = []
    this.#fleet = []
    return out
  }

  /** Force pending updates and fleet reports out now (tests, shutdown). */
  flush (nowWall: number): void {
    for (const oi of this.#open) if (oi.inc.dirty) this.#emit(oi.inc, 'update', nowWall)
    this.#flushFleet(nowWall, true)
  }

  /** Hosts that received batches since the last call. */
  takeHostSummaries (): HostSummary[] {
    const out: HostSummary[] = []
    for (const a of this.#actors.values()) {
      if (!a.touched) continue
      a.touched = false
      out.push({ hostId: a.hostId, lastSeq: a.seq.floor, records: a.records, batches: a.batches, duplicates: a.duplicates, refused: a.refused, gapsSkipped: a.seq.gapsSkipped })
    }
    return out
  }
}
