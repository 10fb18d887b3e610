import { RecordError, ScanError, T_ABSENT, T_MAP, T_NULL, T_NUM, T_STR, type Cols, type ScanLimits } from './columns.js'
import type { RecordChecks } from './field-checks.js'
import type { DerivedField } from './derived.js'
import type { DerivedCaption } from './rules/captions.js'
import { ContextReader, type ShapePlan } from './lean-context.js'
import { MsgReader, typeName } from './msgpack-reader.js'
import { buildTrie, withPrefixes, type TrieNode } from './trie.js'

export * from './columns.js'

// A msgpack scanner that walks a batch once, checks the collector's structural
// limits (string length, nesting depth, record count) and copies only the
// fields the compiled rules read into flat columns. Everything else is
// skipped without being materialised: a full decode allocates every key,
// string and nested object of every record, and that allocation is what
// bounds a detection worker's throughput.
//
// A batch is a msgpack array of records, each either a full OCSF map (older
// agents) or a lean record [shape, v1, ...] whose shape the batch's context
// describes (shared/ocsf/lean.ts; lean-context.ts compiles each shape into
// column slots once per batch). The context's shared fields are projected
// once into a template row and copied into every row whose record does not
// carry its own, by expandRecord's rule: a record's own top-level object is
// merged over the shared one key by key, anything else replaces it.
//
// Given a ClassRouting, a row keeps only the fields the rules of its class
// (class_uid) read, plus the base fields every record has: a rule never sees
// another class's fields, and no check runs on them. Given RecordChecks, the
// row's cells are then checked for meaning (field-checks.ts).

export interface ClassRouting {
  /** slots every record fills, whatever its class (time, class_uid, device.uid, ...) */
  base: readonly number[]
  /** per class_uid the rules select: the further slots its records fill, and the captions among them filled from ids; a row's Cols.cls is its index here */
  classes: Array<{ uid: number, slots: number[], captions: DerivedCaption[], /** fields computed from others (derived.ts) */ derived?: DerivedField[] }>
  /** the class_uid slot */
  classSlot: number
}

interface ClassPlan { index: number, drop: Int32Array, checks: Int32Array, captions: readonly DerivedCaption[], derived: readonly DerivedField[] }

const NO_SHAPES: ShapePlan[] = []

export class Projector {
  /** the projected paths; slot i holds paths[i] */
  readonly paths: readonly string[]
  /** the row stride: the projected paths, then the prefixes shared fields are merged by */
  readonly S: number
  readonly cols: Cols
  readonly #root: TrieNode
  readonly #rd: MsgReader
  readonly #ctx: ContextReader
  readonly #checks: RecordChecks | undefined
  #rows = 0
  /** per slot: the slot of its path's first segment, and of its first two (-1 for a one-segment path) */
  readonly #kSlot: Int32Array
  readonly #kjSlot: Int32Array
  /** slots, deepest path first: a shared field is merged before the objects that hold it */
  readonly #byDepth: Int32Array
  /** the template row's filled slots, deepest first, for this batch */
  readonly #fill: Int32Array
  readonly #classSlot: number
  readonly #byUid = new Map<number, ClassPlan>()
  readonly #other: ClassPlan
  #lastUid = NaN
  #lastPlan: ClassPlan

  constructor (paths: readonly string[], rows = 1024, checks?: RecordChecks, routing?: ClassRouting) {
    this.paths = paths
    const all = withPrefixes(paths)
    this.S = all.length
    this.#root = buildTrie(all)
    this.#checks = checks
    this.cols = { S: this.S, num: new Float64Array(0), typ: new Uint8Array(0), str: [], cls: new Int16Array(0) }
    this.#rd = new MsgReader(this.cols)
    this.#ctx = new ContextReader(this.#root)
    const depth = all.map(p => p.split('.').length)
    this.#kSlot = Int32Array.from(all, p => all.indexOf(p.split('.')[0]))
    this.#kjSlot = Int32Array.from(all, (p, s) => depth[s] === 1 ? -1 : all.indexOf(p.split('.').slice(0, 2).join('.')))
    this.#byDepth = Int32Array.from(all.map((_, s) => s).sort((a, b) => depth[b] - depth[a]))
    this.#fill = new Int32Array(this.S)
    const checked = checks?.slots ?? new Int32Array(0)
    const plan = (index: number, keep: ReadonlySet<number> | undefined, captions: readonly DerivedCaption[] = [], derived: readonly DerivedField[] = []): ClassPlan => ({
      index,
      captions,
      derived,
      drop: Int32Array.from(paths.keys()).filter(s => keep !== undefined && !keep.has(s)),
      checks: Int32Array.from(checked.keys()).filter(k => keep === undefined || keep.has(checked[k])),
    })
    this.#classSlot = routing?.classSlot ?? -1
    this.#other = plan(-1, routing !== undefined ? new Set(routing.base) : undefined)
    routing?.classes.forEach((c, i) => this.#byUid.set(c.uid, plan(i, new Set([...routing.base, ...c.slots]), c.captions, c.derived)))
    this.#lastPlan = this.#other
    this.#grow(rows)
  }

  slot (path: string): number {
    const i = this.paths.indexOf(path)
    if (i < 0) throw new Error(`field ${path} is not projected`)
    return i
  }

  #grow (rows: number): void {
    if (this.#rows >= rows) return
    const c = this.cols
    const n = Math.max(rows, this.#rows * 2)
    c.num = new Float64Array(n * this.S)
    c.typ = new Uint8Array(n * this.S)
    c.str = new Array<string | undefined>(n * this.S).fill(undefined)
    c.cls = new Int16Array(n)
    this.#rows = n
  }

  /**
   * Scan `buf` (one batch: a msgpack array of records) with its `context`
   * (empty or absent for full-form records). Returns the number of rows.
   * Throws ScanError when a limit is exceeded or the bytes are not a
   * well-formed batch, RecordError when a record fails a check (`now` is the
   * collector's clock, for the time window); the columns are then partially
   * filled and must not be used.
   */
  scan (buf: Uint8Array, limits: ScanLimits, now: number, context?: Uint8Array): number {
    const rd = this.#rd
    rd.reset(buf, limits, 'records')
    if (rd.end === 0) throw new ScanError('records is empty; send a msgpack array (an empty batch is the one-byte array 0x90)')
    const head = rd.arrayHeader(0)
    if (head === undefined) throw new ScanError('records is not a msgpack array of records')
    const n = head[0]
    let p = head[1]
    if (n > limits.maxRecords) throw new ScanError(`the batch holds ${n} records, over max_records ${limits.maxRecords}`, 'max_records')
    // one row more than the records: the context's shared fields
    this.#grow(n + 1)
    const c = this.cols
    const S = this.S
    const typ = c.typ
    let shapes = NO_SHAPES
    let fillN = 0
    const tpl = n * S
    if (context !== undefined && context.byteLength > 0) {
      typ.fill(0, tpl, tpl + S)
      rd.reset(context, limits, 'context')
      const ctx = this.#ctx.read(rd, tpl, limits)
      shapes = ctx.shapes
      if (ctx.shared) fillN = this.#fillList(tpl)
      rd.reset(buf, limits, 'records')
    }
    this.#checks?.at(now)
    for (let r = 0; r < n; r++) {
      const base = r * S
      // a cell is read only where typ says it holds a value: str is not cleared
      typ.fill(0, base, base + S)
      if (p >= rd.end) throw new ScanError(`records is truncated: record ${r} of ${n} is missing`)
      const h = buf[p]
      if (h >= 0x80 && h <= 0x8f) p = rd.map(p + 1, h & 15, this.#root, base, 1)
      else if (h >= 0x90 && h <= 0x9f) p = this.#lean(p + 1, h & 15, r, base, shapes)
      else if (h === 0xde) { rd.need(p, 3); p = rd.map(p + 3, rd.u16(p + 1), this.#root, base, 1) } else if (h === 0xdf) { rd.need(p, 5); p = rd.map(p + 5, rd.u32(p + 1), this.#root, base, 1) } else if (h === 0xdc) { rd.need(p, 3); p = this.#lean(p + 3, rd.u16(p + 1), r, base, shapes) } else if (h === 0xdd) { rd.need(p, 5); p = this.#lean(p + 5, rd.u32(p + 1), r, base, shapes) } else this.#notRecord(r, p)
      if (fillN > 0) this.#merge(base, tpl, fillN)
      this.#route(r, base)
    }
    if (p !== rd.end) throw new ScanError(`records has ${rd.end - p} bytes after its last record; a batch is exactly one msgpack array`)
    return n
  }


  /** The template's filled slots, deepest first; returns how many. */
  #fillList (tpl: number): number {
    const typ = this.cols.typ
    let n = 0
    for (const s of this.#byDepth) if (typ[tpl + s] !== T_ABSENT) this.#fill[n++] = s
    return n
  }

  /** Copy the shared fields the record at `base` does not override (expandRecord's merge). */
  #merge (base: number, tpl: number, fillN: number): void {
    const { typ, num, str } = this.cols
    const fill = this.#fill
    for (let f = 0; f < fillN; f++) {
      const s = fill[f]
      const ks = this.#kSlot[s]
      const tk = typ[base + ks]
      // an own top-level value hides the shared one, unless both are maps: then only its own keys do
      if (tk !== T_ABSENT && (ks === s || tk !== T_MAP || typ[base + this.#kjSlot[s]] !== T_ABSENT)) continue
      typ[base + s] = typ[tpl + s]
      num[base + s] = num[tpl + s]
      str[base + s] = str[tpl + s]
    }
  }

  /** The row's class: drop what its rules do not read, then check the rest. */
  #route (r: number, base: number): void {
    const c = this.cols
    let plan = this.#other
    const cs = this.#classSlot
    if (cs >= 0) {
      // a record without its class would pass every class's checks unread
      if (c.typ[base + cs] !== T_NUM) throw new RecordError(r, `class_uid is ${c.typ[base + cs] === T_ABSENT ? 'absent' : c.typ[base + cs] === T_NULL ? 'nil' : 'not a number'}; every record names its OCSF class by number (4001 network_activity, ...)`)
      const uid = c.num[base + cs]
      if (uid === this.#lastUid) plan = this.#lastPlan
      else {
        plan = this.#byUid.get(uid) ?? this.#other
        this.#lastUid = uid
        this.#lastPlan = plan
      }
    }
    c.cls[r] = plan.index
    const drop = plan.drop
    for (let j = 0; j < drop.length; j++) c.typ[base + drop[j]] = T_ABSENT
    if (plan.captions.length > 0) this.#captions(plan.captions, base)
    if (plan.derived.length > 0) this.#derive(plan.derived, base)
    const checks = this.#checks
    if (checks === undefined) return
    const ks = plan.checks
    const slots = checks.slots
    for (let j = 0; j < ks.length; j++) {
      const k = ks[j]
      const i = base + slots[k]
      if (c.typ[i] !== T_ABSENT && !checks.cell(k, c, i)) throw new RecordError(r, checks.problem(k, c, base))
    }
    const k = checks.row(c, base)
    if (k >= 0) throw new RecordError(r, checks.problem(k, c, base))
  }

  /** Fill the captions the record left out from their ids, as fillCaptions does. */
  #captions (captions: readonly DerivedCaption[], base: number): void {
    const { typ, num, str } = this.cols
    for (const d of captions) {
      const i = base + d.slot
      const t = typ[i]
      if (t !== T_ABSENT && !(d.overNull && t === T_NULL)) continue
      const f = base + d.from
      // fillCaptions looks an enum up by String(id): a numeric string finds it too
      const id = typ[f] === T_NUM ? num[f] : typ[f] === T_STR && /^-?\d+$/.test(str[f] as string) ? Number(str[f]) : NaN
      const v = d.table[id]
      if (typeof v === 'string') { typ[i] = T_STR; str[i] = v } else if (typeof v === 'number') { typ[i] = T_NUM; num[i] = v }
    }
  }

  /** Compute the derived fields from their sources: always, so a record cannot bring its own. */
  #derive (derived: readonly DerivedField[], base: number): void {
    const { typ, str } = this.cols
    for (const d of derived) {
      const i = base + d.slot
      const f = base + d.from
      const v = typ[f] === T_STR ? d.derive(str[f] as string) : undefined
      if (v === undefined) typ[i] = T_ABSENT
      else { typ[i] = T_STR; str[i] = v }
    }
  }

  /** A lean record of `n` elements at p: its shape index, then the values of that shape's paths. */
  #lean (p: number, n: number, r: number, base: number, shapes: ShapePlan[]): number {
    const rd = this.#rd
    const buf = rd.buf
    if (n === 0) throw new ScanError(`record ${r} is an empty array; a lean record is [shape, value, ...]`)
    if (p >= rd.end) throw new ScanError(`records is truncated inside record ${r}`)
    const sb = buf[p]
    let idx: number
    if (sb < 0x80) { idx = sb; p++ } else if (sb === 0xcc) { rd.need(p, 2); idx = buf[p + 1]; p += 2 } else if (sb === 0xcd) { rd.need(p, 3); idx = rd.u16(p + 1); p += 3 } else {
      throw new ScanError(`record ${r} is an array that starts with ${typeName(sb)}; a lean record starts with its shape's index in the batch's context`)
    }
    const shape = shapes[idx]
    if (shape === undefined) throw new ScanError(`record ${r} has shape ${idx}, but the batch's context lists ${shapes.length} shape${shapes.length === 1 ? '' : 's'}; send the shapes a batch's records use in that batch's context`)
    const m = n - 1
    if (m > shape.n) throw new ScanError(`record ${r} has ${m} values for the ${shape.n} fields of its shape ${idx}; a lean record holds at most one value per field of its shape`)
    const typ = this.cols.typ
    const { slot, node, marks } = shape
    for (let i = 0; i < m; i++) {
      if (p >= rd.end) throw new ScanError(`records is truncated inside record ${r}`)
      const vb = buf[p]
      // nil: the field is absent
      if (vb === 0xc0) { p++; continue }
      const mk = marks[i]
      if (mk !== undefined) for (let j = 0; j < mk.length; j++) typ[base + mk[j]] = T_MAP
      const s = slot[i]
      const nd = node[i]
      if (nd !== undefined) {
        let entries = -1
        let at = 0
        if (vb >= 0x80 && vb <= 0x8f) { entries = vb & 15; at = p + 1 } else if (vb === 0xde) { rd.need(p, 3); entries = rd.u16(p + 1); at = p + 3 } else if (vb === 0xdf) { rd.need(p, 5); entries = rd.u32(p + 1); at = p + 5 }
        if (entries >= 0) {
          p = rd.map(at, entries, nd, base, 2)
          if (s >= 0) typ[base + s] = T_MAP
          continue
        }
      }
      p = s >= 0 ? rd.value(p, base + s, 2) : rd.skip(p, 2)
    }
    return p
  }

  /** Record r at p is neither a map nor an array: refuse it, unless its bytes are not even msgpack (that is the worse problem). */
  #notRecord (r: number, p: number): never {
    this.#rd.skip(p, 1)
    throw new RecordError(r, `the record is ${typeName(this.#rd.buf[p])}, not a map or a lean record [shape, value, ...]; each record is one OCSF object`)
  }
}
