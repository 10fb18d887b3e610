import { HEADER } from '../../bpf/abi.js'
import { unpackRecords, unpackValue } from '../../shared/codec.js'
import { expandBatch, type LeanContext } from '../../shared/ocsf/lean.js'
import { MsgpackWriter } from './pack.js'
import { REGISTRY, type Registry } from './registry.js'
import { SKIP, type DecodeEnv, type DecodeResult } from './types.js'

// Raw records → lean batches (shared/ocsf/lean.ts is the form's definition).
// Each batch is its records, a msgpack array of [shape, v1, v2, ...] written
// by the classes' normalisers straight from the raw structs, followed by its
// context: the fields every record shares (metadata, device), once, and the
// shapes. The context is assembled from encodings made once: the shapes the
// batch does not use go out as empty lists, so shape indices stay fixed and
// a trickle of small batches does not carry every class's shapes.

/** One batch in the writer's buffer: its records, then its context. */
export interface LeanSpan {
  /** the msgpack array of lean records */
  offset: number
  length: number
  /** the msgpack context map (collector.proto Batch.context) */
  contextOffset: number
  contextLength: number
  count: number
}

const EMPTY_SHAPE = new Uint8Array([0x90])

export class LeanBatcher {
  readonly #reg: Registry
  /** {shared: ..., shapes: [ (the map header, the shared part and the shapes array header) */
  readonly #head: Uint8Array
  readonly #shapes: Uint8Array[]
  readonly #used: Uint8Array
  /** the largest context a batch can have (every shape used) */
  readonly maxContextBytes: number

  /** `shared`: the OCSF fields every record has (metadata, device); they must not change */
  constructor (shared: Record<string, unknown>, registry: Registry = REGISTRY) {
    this.#reg = registry
    const w = new MsgpackWriter(4096)
    w.mapHeader(2)
    w.key('shared')
    w.value(shared)
    w.key('shapes')
    w.arrayHeader(registry.shapes.length)
    this.#head = w.finish()
    this.#shapes = registry.shapes.map(s => { w.reset(); w.value(s); return w.finish() })
    this.#used = new Uint8Array(registry.shapes.length)
    this.maxContextBytes = this.#head.length + this.#shapes.reduce((n, s) => n + s.length, 0)
  }

  /**
   * Decode the raw records in [offset, offset + length) of `buf` into lean
   * batches appended to `w`, one span each in `spans`. A batch is closed
   * before its records and its context together would pass maxBatchBytes
   * (unless it holds a single record).
   */
  encode (w: MsgpackWriter, buf: Uint8Array, offset: number, length: number, env: DecodeEnv, maxBatchBytes: number, spans: LeanSpan[]): DecodeResult {
    const { byKind, sizeOf, minSizeOf, shape0 } = this.#reg
    const used = this.#used
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    const end = offset + length
    const limit = maxBatchBytes - this.maxContextBytes
    let records = 0
    let written = 0
    let skipped = 0
    let errors = 0
    let firstError: string | undefined
    let open = -1
    let count = 0
    let p = offset
    while (p + HEADER.SIZEOF <= end) {
      const kind = dv.getUint16(p + HEADER.kind, true)
      const size = dv.getUint16(p + HEADER.size, true)
      if (size < HEADER.SIZEOF || p + size > end || (size & 7) !== 0) {
        // the framing itself is broken: nothing after this point can be trusted
        errors++
        firstError ??= `record at byte ${p - offset}: size ${size} is not a valid record size (kind ${kind})`
        break
      }
      const n = byKind[kind]
      if (n === undefined || size > sizeOf[kind] || size < minSizeOf[kind]) {
        errors++
        firstError ??= `record at byte ${p - offset}: kind ${kind} size ${size} is not a record this agent decodes`
        p += size
        continue
      }
      records++
      if (open < 0) { open = w.array32(); count = 0 }
      const mark = w.length
      let s = n.write(w, buf, dv, p, kind, shape0[kind], env)
      if (s >= 0) {
        if (count > 0 && w.length - open > limit) {
          // over the collector's size limit: this record opens the next batch
          w.truncate(mark)
          this.#close(w, open, count, spans)
          open = w.array32()
          count = 0
          s = n.write(w, buf, dv, p, kind, shape0[kind], env)
        }
        used[shape0[kind] + s] = 1
        count++
        written++
      } else if (s === SKIP) skipped++
      p += size
    }
    if (open >= 0) {
      if (count > 0) this.#close(w, open, count, spans)
      else w.truncate(open)
    }
    const res: DecodeResult = { records, written, skipped, errors }
    if (firstError !== undefined) res.firstError = firstError
    return res
  }

  #close (w: MsgpackWriter, open: number, count: number, spans: LeanSpan[]): void {
    w.patchArray32(open, count)
    const at = w.length
    w.raw(this.#head)
    const used = this.#used
    for (let i = 0; i < used.length; i++) {
      w.raw(used[i] === 1 ? this.#shapes[i] : EMPTY_SHAPE)
      used[i] = 0
    }
    spans.push({ offset: open, length: at - open, contextOffset: at, contextLength: w.length - at, count })
  }
}

/** The full OCSF records of lean batches in `bytes` (shared/ocsf/lean.ts expandBatch). */
export function expandSpans (bytes: Uint8Array, spans: readonly LeanSpan[]): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = []
  for (const s of spans) {
    const ctx = unpackValue(bytes.subarray(s.contextOffset, s.contextOffset + s.contextLength)) as LeanContext
    for (const r of expandBatch(ctx, unpackRecords(bytes.subarray(s.offset, s.offset + s.length)))) out.push(r)
  }
  return out
}
