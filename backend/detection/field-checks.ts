import {
  CLASS, DIRECTION, NET_ACTIVITY, OCSF_CLASS_UID_RANGES, OCSF_MAX_ACTIVITY_ID, PROTOCOL_VER, SEVERITY,
} from '../../shared/ocsf/constants.js'
import { isoTime } from '../../shared/time.js'
import { isIp } from './ip.js'
import { T_FALSE, T_NULL, T_NUM, T_STR, T_TRUE, type Cols } from './columns.js'

// What a projected field must hold to mean anything. The check of a field is
// decided once, from its path, by the table below; the projector runs it on
// each cell of a row its class keeps, once the row is read, so a record that
// reaches a rule has passed. A field that is absent (or null) is not there
// for the rules either, and passes.

/** How far a record's time may lie from the collector's clock. */
export interface RecordWindow {
  maxAgeMs: number
  maxAheadMs: number
}

export const RECORD_WINDOW: Readonly<RecordWindow> = Object.freeze({ maxAgeMs: 7 * 24 * 3600_000, maxAheadMs: 5 * 60_000 })

export type FieldCheck =
  /** finite, within the window around the collector's clock */
  | { kind: 'time' }
  | { kind: 'ip' }
  | { kind: 'int', min: number, max: number, what: string }
  /** one of `values`, or of `byClass[class_uid]` when the record's class has its own list */
  | { kind: 'enum', values: readonly number[], byClass?: ReadonlyMap<number, readonly number[]>, what: string }

const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i)
const enumOf = (e: Readonly<Record<string, number>>, what: string): FieldCheck => ({ kind: 'enum', values: Object.values(e), what })

/** Path pattern → check; the first pattern that matches a path decides. */
export const FIELD_CHECKS: ReadonlyArray<{ path: RegExp, check: FieldCheck }> = [
  { path: /^(time|start_time|end_time)$/, check: { kind: 'time' } },
  { path: /(^|\.)port$/, check: { kind: 'int', min: 0, max: 65535, what: 'a port (an integer from 0 to 65535)' } },
  { path: /(^|\.)ip$/, check: { kind: 'ip' } },
  { path: /^class_uid$/, check: { kind: 'enum', values: OCSF_CLASS_UID_RANGES.flatMap(([lo, hi]) => range(lo, hi)), what: 'an OCSF 1.8.0 class_uid' } },
  {
    path: /^activity_id$/,
    check: {
      kind: 'enum',
      values: [...range(0, OCSF_MAX_ACTIVITY_ID), 99],
      byClass: new Map([[CLASS.NETWORK_ACTIVITY.uid, Object.values(NET_ACTIVITY)]]),
      what: 'an activity_id of the record\'s class',
    },
  },
  { path: /^severity_id$/, check: enumOf(SEVERITY, 'an OCSF severity_id') },
  { path: /^connection_info\.direction_id$/, check: enumOf(DIRECTION, 'an OCSF direction_id') },
  { path: /^connection_info\.protocol_num$/, check: { kind: 'int', min: 0, max: 255, what: 'an IP protocol number (an integer from 0 to 255)' } },
  { path: /^connection_info\.protocol_ver_id$/, check: enumOf(PROTOCOL_VER, 'an OCSF protocol_ver_id') },
]

export function checkFor (path: string): FieldCheck | undefined {
  return FIELD_CHECKS.find(c => c.path.test(path))?.check
}

// how a field is checked in the row loop: a time is a number within
// [lo, hi] (set per batch from the clock); an integer within [lo, hi]; a
// member of a table; an address
const TIME = 1
const INT = 2
const ENUM = 3
const IP = 4

/** A list of allowed small integers as a lookup table. */
function table (values: readonly number[]): Uint8Array {
  const t = new Uint8Array(Math.max(...values) + 1)
  for (const v of values) t[v] = 1
  return t
}

function describe (c: Cols, i: number): string {
  switch (c.typ[i]) {
    case T_NUM: return String(c.num[i])
    case T_STR: {
      const s = c.str[i] as string
      return `'${s.slice(0, 64).replace(/[^\x20-\x7e]/g, '?')}${s.length > 64 ? '...' : ''}'`
    }
    case T_TRUE: return 'true'
    case T_FALSE: return 'false'
  }
  return '(a map, array or binary value)'
}

function span (ms: number): string {
  for (const [unit, n] of [['days', 86_400_000], ['hours', 3_600_000], ['minutes', 60_000], ['seconds', 1000]] as const) {
    if (ms >= n && ms % n === 0) return `${ms / n} ${ms === n ? unit.slice(0, -1) : unit}`
  }
  return `${ms} ms`
}

/** The checks of one projection (a list of paths), compiled for the row loop. */
export class RecordChecks {
  readonly #paths: readonly string[]
  readonly #window: RecordWindow
  /** per checked field k: its column slot, kind and bounds */
  readonly #slot: Int32Array
  readonly #kind: Uint8Array
  readonly #lo: Float64Array
  readonly #hi: Float64Array
  readonly #values: Array<Uint8Array | undefined>
  /** per checked field: the class whose own table replaces #values (-1: none), and that table */
  readonly #ownClass: Float64Array
  readonly #ownValues: Array<Uint8Array | undefined>
  readonly #what: string[]
  readonly #classSlot: number
  /** the checks with a class of their own */
  readonly #own: number[] = []
  #now = 0
  /** the last address that passed, per field: the projector interns strings, so a repeat is one comparison */
  readonly #lastIp: Array<string | undefined>

  constructor (paths: readonly string[], window: RecordWindow = RECORD_WINDOW) {
    this.#paths = paths
    this.#window = window
    const checked = paths.map((p, slot) => ({ slot, check: checkFor(p) })).filter(x => x.check !== undefined) as Array<{ slot: number, check: FieldCheck }>
    const n = checked.length
    this.#slot = Int32Array.from(checked, x => x.slot)
    this.#kind = new Uint8Array(n)
    this.#lo = new Float64Array(n)
    this.#hi = new Float64Array(n)
    this.#values = new Array<Uint8Array | undefined>(n)
    this.#ownClass = new Float64Array(n).fill(-1)
    this.#ownValues = new Array<Uint8Array | undefined>(n)
    this.#what = new Array<string>(n).fill('')
    this.#lastIp = new Array<string | undefined>(n)
    checked.forEach(({ slot, check }, k) => {
      switch (check.kind) {
        case 'time': this.#kind[k] = TIME; break
        case 'ip': this.#kind[k] = IP; this.#what[k] = 'an IPv4 or IPv6 address'; break
        case 'int': this.#kind[k] = INT; this.#lo[k] = check.min; this.#hi[k] = check.max; this.#what[k] = check.what; break
        case 'enum':
          this.#kind[k] = ENUM
          this.#values[k] = table(check.values)
          for (const [cls, v] of check.byClass ?? []) {
            if (this.#ownValues[k] !== undefined) throw new Error(`${paths[slot]}: one class with its own values is supported`)
            this.#ownClass[k] = cls
            this.#ownValues[k] = table(v)
            this.#own.push(k)
          }
          this.#what[k] = check.what
          break
      }
    })
    this.#classSlot = paths.indexOf('class_uid')
  }

  /** Set the collector's clock for the rows that follow (the time window moves with it). */
  at (now: number): void {
    this.#now = now
    for (let k = 0; k < this.#kind.length; k++) {
      if (this.#kind[k] !== TIME) continue
      this.#lo[k] = now - this.#window.maxAgeMs
      this.#hi[k] = now + this.#window.maxAheadMs
    }
  }

  /** The column slot of each check k. */
  get slots (): Int32Array {
    return this.#slot
  }

  /** Does cell `i`, just filled, hold what check `k` wants? Absent and null pass. */
  cell (k: number, c: Cols, i: number): boolean {
    const t = c.typ[i]
    if (t === T_NULL) return true
    const v = c.num[i]
    switch (this.#kind[k]) {
      // NaN fails both comparisons, ±Infinity one of them
      case TIME: return t === T_NUM && v >= this.#lo[k] && v <= this.#hi[k]
      // bounds and tables stay within int32, so (v | 0) === v is the integer test there
      case INT: return t === T_NUM && v >= this.#lo[k] && v <= this.#hi[k] && (v | 0) === v
      case ENUM: return t === T_NUM && v >= 0 && v <= 65535 && (v | 0) === v && (this.#values[k] as Uint8Array)[v] === 1
      case IP: {
        if (t !== T_STR) return false
        const s = c.str[i] as string
        if (s === this.#lastIp[k]) return true
        if (!isIp(s)) return false
        this.#lastIp[k] = s
        return true
      }
    }
    return true
  }

  /**
   * The checks that need the whole row (a value some classes narrow, such
   * as network_activity's activity_id), run once its cells passed: the
   * failing check, or -1.
   */
  row (c: Cols, base: number): number {
    const own = this.#own
    if (own.length === 0) return -1
    const cs = this.#classSlot
    if (cs < 0 || c.typ[base + cs] !== T_NUM) return -1
    const cls = c.num[base + cs]
    for (let j = 0; j < own.length; j++) {
      const k = own[j]
      const i = base + this.#slot[k]
      if (c.typ[i] === T_NUM && cls === this.#ownClass[k] && (this.#ownValues[k] as Uint8Array)[c.num[i]] !== 1) return k
    }
    return -1
  }

  /** What is wrong with check `k`'s cell in the row at `base`: the field, its value and what it should be. */
  problem (k: number, c: Cols, base: number): string {
    const i = base + this.#slot[k]
    const now = this.#now
    const field = this.#paths[this.#slot[k]]
    const value = describe(c, i)
    const t = c.typ[i]
    if (this.#kind[k] === TIME) {
      if (t !== T_NUM) return `${field} ${value} is not a number; OCSF times are milliseconds since the epoch`
      if (!Number.isFinite(c.num[i])) return `${field} ${value} is not a finite number of milliseconds since the epoch`
      const w = this.#window
      const when = isoTime(c.num[i])
      return `${field} ${value}${when !== value ? ` (${when})` : ''} is outside what the collector accepts, ${span(w.maxAgeMs)} before to ${span(w.maxAheadMs)} after its clock ` +
        `(${isoTime(now)}); check the sending host's clock, or widen the collector's --max-record-age / --max-record-ahead`
    }
    const what = this.#what[k]
    if (t === T_STR && this.#kind[k] !== IP) return `${field} ${value} is a string, not ${what}`
    return `${field} ${value} is not ${what}`
  }
}
