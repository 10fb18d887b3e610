import { badPath } from '../../shared/ocsf/lean-wire.js'
import { ScanError, type ScanLimits } from './columns.js'
import { typeName, type MsgReader } from './msgpack-reader.js'
import { childNamed, type TrieNode } from './trie.js'

// A batch's context (collector.proto Batch.context, shared/ocsf/lean.ts):
// a msgpack map {shared?: map, shapes?: [[path, ...], ...]}. `shared` is
// projected once into a template row; each shape is compiled once into a
// plan that sends each value position straight to its column slot, so a
// lean record [shape, v1, ...] is read without matching a single key. Plans
// are cached by the bytes of `shapes`: an agent sends the same ones batch
// after batch. Keys other than shared and shapes are skipped, as
// expandRecord skips them.

/** What the scanner does with each value position of one shape. */
export interface ShapePlan {
  /** the shape's number of paths */
  n: number
  /** the column slot a position's value goes to, -1 for none */
  slot: Int32Array
  /** the trie below a position's path: a map value there holds projected fields */
  node: Array<TrieNode | undefined>
  /** projected slots that are prefixes of a position's path: a value there makes them maps */
  marks: Array<Int32Array | undefined>
}

/** Paths over all shapes of one context, at most (a real agent sends a few dozen). */
export const MAX_CONTEXT_PATHS = 16_384
/** Shapes in one context, at most. */
export const MAX_SHAPES = 4096
const CACHE_SIZE = 64
const CACHE_MAX_BYTES = 8192

function plan (root: TrieNode, paths: readonly string[]): ShapePlan {
  const n = paths.length
  const p: ShapePlan = { n, slot: new Int32Array(n).fill(-1), node: new Array<TrieNode | undefined>(n), marks: new Array<Int32Array | undefined>(n) }
  paths.forEach((path, i) => {
    const parts = path.split('.')
    const marks: number[] = []
    let node: TrieNode | undefined = root
    for (let d = 0; d < parts.length && node !== undefined; d++) {
      const child = childNamed(node, parts[d])
      if (child === undefined) break
      if (d === parts.length - 1) {
        p.slot[i] = child.slot
        p.node[i] = child.node
      } else if (child.slot >= 0) marks.push(child.slot)
      node = child.node
    }
    if (marks.length > 0) p.marks[i] = Int32Array.from(marks)
  })
  return p
}

/** Each path a leaf, named once: a shape where one path lies inside another would give one field two values. */
function overlap (paths: readonly string[]): string | undefined {
  const seen = new Set<string>()
  for (const path of paths) {
    if (seen.has(path)) return `names '${path}' twice`
    seen.add(path)
  }
  for (const path of paths) {
    for (let i = path.indexOf('.'); i >= 0; i = path.indexOf('.', i + 1)) {
      const prefix = path.slice(0, i)
      if (seen.has(prefix)) return `names both '${prefix}' and '${path}', which lies inside it`
    }
  }
  return undefined
}

export class ContextReader {
  readonly #root: TrieNode
  readonly #cache = new Map<string, ShapePlan[]>()

  constructor (root: TrieNode) {
    this.#root = root
  }

  /**
   * Read the context in `rd` (reset on its bytes): its shared fields go into
   * the row at `tplBase` (which the caller cleared); returns the shape plans
   * and whether it had shared fields.
   */
  read (rd: MsgReader, tplBase: number, limits: ScanLimits): { shapes: ShapePlan[], shared: boolean } {
    const buf = rd.buf
    const hdr = rd.mapHeader(0)
    if (hdr === undefined) throw new ScanError(`context is ${typeName(buf[0])}, not a msgpack map; send {shared, shapes} as shared/ocsf/lean.ts packLean makes it, or no context for full-form records`)
    let [n, p] = hdr
    let shapes: ShapePlan[] = []
    let shared = false
    const seen = new Set<string>()
    for (let k = 0; k < n; k++) {
      if (p >= rd.end) throw new ScanError('context is truncated inside its map')
      const key = rd.strAt(p)
      if (key === undefined) throw new ScanError(`context has a key that is ${typeName(buf[p])}; its keys are the strings shared and shapes`)
      const name = rd.decode(key[0], key[1])
      p = key[0] + key[1]
      if (p >= rd.end) throw new ScanError('context is truncated: a key has no value')
      if (seen.has(name)) throw new ScanError(`context names '${name.slice(0, 64)}' twice; it is a map with each key once`)
      seen.add(name)
      // the context sits where a batch sits, so shared is as deep as a record
      if (name === 'shared') {
        if (buf[p] === 0xc0) { p++; continue }
        const m = rd.mapHeader(p)
        if (m === undefined) throw new ScanError(`context.shared is ${typeName(buf[p])}, not a map; it holds the OCSF objects every record of the batch has in common (metadata, device)`)
        p = rd.map(m[1], m[0], this.#root, tplBase, 1)
        shared = true
      } else if (name === 'shapes') {
        const end = rd.skip(p, 1)
        shapes = buf[p] === 0xc0 ? [] : this.#shapes(rd, p, end, limits)
        p = end
      } else {
        p = rd.skip(p, 1)
      }
    }
    if (p !== rd.end) throw new ScanError(`context has ${rd.end - p} bytes after its map; it is exactly one msgpack map`)
    return { shapes, shared }
  }

  #shapes (rd: MsgReader, from: number, to: number, limits: ScanLimits): ShapePlan[] {
    // small blobs only: a hostile context must not make the cache hold megabytes
    const key = to - from <= CACHE_MAX_BYTES ? `${limits.maxStringBytes}/${limits.maxDepth}/${rd.bytesKey(from, to)}` : undefined
    const hit = key !== undefined ? this.#cache.get(key) : undefined
    if (hit !== undefined) return hit
    const buf = rd.buf
    const list = rd.arrayHeader(from)
    if (list === undefined) throw new ScanError(`context.shapes is ${typeName(buf[from])}, not an array of shapes (each an array of OCSF field paths)`)
    let [count, p] = list
    if (count > MAX_SHAPES) throw new ScanError(`context.shapes lists ${count} shapes, over ${MAX_SHAPES}; a batch's records need a few: send fewer shapes per batch`)
    const plans: ShapePlan[] = []
    let total = 0
    for (let i = 0; i < count; i++) {
      const shape = rd.arrayHeader(p)
      if (shape === undefined) throw new ScanError(`context.shapes[${i}] is ${typeName(buf[p])}, not an array of OCSF field paths`)
      total += shape[0]
      if (total > MAX_CONTEXT_PATHS) throw new ScanError(`context.shapes lists more than ${MAX_CONTEXT_PATHS} field paths; a batch's records need a few shapes of a few dozen fields each: send fewer shapes per batch`)
      p = shape[1]
      const paths: string[] = []
      for (let j = 0; j < shape[0]; j++) {
        const s = rd.strAt(p)
        if (s === undefined) throw new ScanError(`context.shapes[${i}][${j}] is ${typeName(buf[p])}, not a field path string`)
        const path = rd.decode(s[0], s[1])
        const bad = badPath(path)
        if (bad !== undefined) throw new ScanError(`context.shapes[${i}][${j}]: ${bad}; a shape lists OCSF field paths such as src_endpoint.ip`)
        paths.push(path)
        p = s[0] + s[1]
      }
      const twice = overlap(paths)
      if (twice !== undefined) throw new ScanError(`context.shapes[${i}] ${twice}; a shape lists each field once, as a leaf (shared/ocsf/lean.ts packLean)`)
      plans.push(plan(this.#root, paths))
    }
    if (p !== to) throw new ScanError('context.shapes is malformed')
    if (key !== undefined) {
      if (this.#cache.size >= CACHE_SIZE) this.#cache.clear()
      this.#cache.set(key, plans)
    }
    return plans
  }
}
