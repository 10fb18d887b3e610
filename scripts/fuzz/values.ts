import fc from 'fast-check'
import { MsgpackWriter } from '../../agent/normalize/pack.js'

// The hostile values the fuzzer puts into records, and the msgpack writer
// that packs them. Values are data (a HostileValue), not JS values, so a
// generated case stays small until it is sent: a 64 KiB string is
// { k: 'long', ... } until materialize() builds it. Anything msgpack can
// carry but a JS object cannot (extension types, invalid UTF-8, duplicate or
// non-string keys, nesting 100,000 deep) is written as raw bytes.

/** Bytes written into the msgpack stream as they are. */
export class Raw {
  constructor (readonly bytes: Uint8Array) {}
}

export type HostileValue =
  | { k: 'num', v: number }
  | { k: 'str', v: string }
  | { k: 'long', ch: string, bytes: number }
  | { k: 'bool', v: boolean }
  | { k: 'nil' }
  | { k: 'big', v: bigint }
  | { k: 'bin', v: Uint8Array }
  | { k: 'json', v: unknown }
  | { k: 'nest', depth: number, container: 'array' | 'map' }
  | { k: 'ext', type: number, bytes: number }
  | { k: 'badutf8', v: Uint8Array }

/** Numbers at and past the edges: non-finite, past 2^53, negative, ports out of range, absurd epoch times. */
export const EDGE_NUMBERS: readonly number[] = [
  NaN, Infinity, -Infinity, -1e20, 1e20, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 2 ** 64, 2 ** 31, -(2 ** 31) - 1, 2 ** 32,
  -1, 0, -0, 0.5, 1.5, 65535, 65536, 70000, -80, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE,
  1000, 32_503_680_000_000, -62_135_596_800_000, 8.64e15, 8.64e15 + 1,
]

/** Strings that look like IP addresses, or nearly. */
export const IP_LIKE: readonly string[] = [
  '', '256.1.1.1', '1.2.3', '1.2.3.4.5', '::ffff:10.0.0.1', '::', '::1', 'fe80::1%eth0', '2001:db8::/32', ' 10.0.0.1',
  '10.0.0.1 ', '010.000.000.001', '0x7f.0.0.1', 'localhost', 'not-an-ip', '1.2.3.4:80', '[::1]', '::::',
  '1:2:3:4:5:6:7:8:9', '١٢٣.١.١.١', '0.0.0.0', '255.255.255.255',
]

/** Strings a parser or a template might trip on. */
export const ODD_STRINGS: readonly string[] = [
  '\0', 'NaN', '80', '-1', '1e20', '__proto__', 'constructor', 'toString', '\ud800', '%s%n%x', '<script>alert(1)</script>',
  '{host}', '\n\r\t', '\u202e', 'Infinity', 'null', 'true', '0x50',
]

const LONG_CHARS = ['a', 'é', '€', '😀'] as const

/** Another type than the field's: strings, integers, booleans, nil, bigints, binary, maps and arrays, extensions, invalid UTF-8. */
export function typeValue (): fc.Arbitrary<HostileValue> {
  return fc.oneof(
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map(v => ({ k: 'str' as const, v })) },
    { weight: 2, arbitrary: fc.constantFrom(...IP_LIKE, ...ODD_STRINGS).map(v => ({ k: 'str' as const, v })) },
    { weight: 1, arbitrary: fc.integer().map(v => ({ k: 'num' as const, v })) },
    { weight: 1, arbitrary: fc.boolean().map(v => ({ k: 'bool' as const, v })) },
    { weight: 1, arbitrary: fc.constant({ k: 'nil' as const }) },
    { weight: 1, arbitrary: fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }).map(v => ({ k: 'big' as const, v })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map(v => ({ k: 'bin' as const, v })) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map(v => ({ k: 'json' as const, v })) },
    { weight: 1, arbitrary: fc.record({ type: fc.integer({ min: -128, max: 127 }), bytes: fc.constantFrom(1, 2, 4, 8, 12, 16, 300) }).map(x => ({ k: 'ext' as const, ...x })) },
    { weight: 1, arbitrary: fc.constantFrom([0xff, 0xfe], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80]).map(b => ({ k: 'badutf8' as const, v: Uint8Array.from(b) })) },
  )
}

/** The right type, past its range: edge numbers, near-IP strings, strings around `maxString` bytes (max_string_bytes). */
export function rangeValue (maxString: number): fc.Arbitrary<HostileValue> {
  const long = fc.record({
    ch: fc.constantFrom(...LONG_CHARS),
    bytes: fc.oneof(fc.constantFrom(maxString - 1, maxString, maxString + 1, 65_536), fc.integer({ min: 1, max: maxString * 2 })),
  }).map(x => ({ k: 'long' as const, ...x }))
  return fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...EDGE_NUMBERS).map(v => ({ k: 'num' as const, v })) },
    { weight: 2, arbitrary: fc.oneof(fc.double(), fc.integer({ min: -2, max: 70_000 })).map(v => ({ k: 'num' as const, v })) },
    { weight: 2, arbitrary: fc.constantFrom(...IP_LIKE).map(v => ({ k: 'str' as const, v })) },
    { weight: 2, arbitrary: long },
  )
}

/** Containers nested past max_depth, up to 100,000 levels. */
export function nestedValue (): fc.Arbitrary<HostileValue> {
  return fc.record({
    depth: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(100_000)),
    container: fc.constantFrom('array' as const, 'map' as const),
  }).map(x => ({ k: 'nest' as const, ...x }))
}

/** A string of about `bytes` UTF-8 bytes made of `ch`; at least one character. */
function longString (ch: string, bytes: number): string {
  const per = Buffer.byteLength(ch)
  return ch.repeat(Math.max(1, Math.ceil(bytes / per)))
}

function nested (depth: number, container: 'array' | 'map'): Raw {
  // fixarray of one / fixmap of one ("k": ...) per level, then nil
  const unit = Uint8Array.from(container === 'array' ? [0x91] : [0x81, 0xa1, 0x6b])
  const out = Buffer.alloc(depth * unit.length + 1, unit)
  out[out.length - 1] = 0xc0
  return new Raw(out)
}

function ext (type: number, n: number): Raw {
  const fixed: Record<number, number> = { 1: 0xd4, 2: 0xd5, 4: 0xd6, 8: 0xd7, 16: 0xd8 }
  const head = fixed[n] !== undefined ? [fixed[n], type & 0xff] : [0xc7, n, type & 0xff]
  const body = new Uint8Array(n).fill(0xab)
  return new Raw(Uint8Array.from([...head, ...body]))
}

/** The JS value (or Raw bytes) a HostileValue stands for. */
export function materializeValue (h: HostileValue): unknown {
  switch (h.k) {
    case 'num': case 'str': case 'bool': case 'big': case 'bin': case 'json': return h.v
    case 'nil': return null
    case 'long': return longString(h.ch, h.bytes)
    case 'nest': return nested(h.depth, h.container)
    case 'ext': return ext(h.type, h.bytes)
    case 'badutf8': return new Raw(Uint8Array.from([0xa0 | h.v.length, ...h.v]))
  }
}

/** A short description of a value, for reports. */
export function describeValue (h: HostileValue): string {
  switch (h.k) {
    case 'num': return Object.is(h.v, -0) ? '-0' : String(h.v)
    case 'str': return JSON.stringify(h.v.length > 24 ? h.v.slice(0, 24) + '…' : h.v)
    case 'long': return `${h.bytes}-byte string of '${h.ch}'`
    case 'bool': return String(h.v)
    case 'nil': return 'nil'
    case 'big': return `${h.v}n`
    case 'bin': return `bin[${h.v.length}]`
    case 'json': return `json ${JSON.stringify(h.v)?.slice(0, 24) ?? 'undefined'}`
    case 'nest': return `${h.container}s nested ${h.depth} deep`
    case 'ext': return `ext type ${h.type} [${h.bytes}]`
    case 'badutf8': return 'invalid UTF-8'
  }
}

/**
 * Packs records with the agent's own msgpack writer (agent/normalize/pack.ts),
 * plus what it would never write: Raw bytes in place of a value, and maps
 * given as entry lists (duplicate keys, non-string keys).
 */
export class HostilePacker {
  readonly #w = new MsgpackWriter(1 << 16)
  /** records a mutation may have put Raw or Entries into; the rest take the writer's own path */
  readonly #touched = new WeakSet<object>()

  touch (record: object): void {
    this.#touched.add(record)
  }

  /** One msgpack array; `header` overrides the element count written (a lie when it differs). */
  pack (records: readonly unknown[], header = records.length): Uint8Array {
    const w = this.#w
    w.reset()
    w.arrayHeader(header)
    for (const r of records) {
      if (r !== null && typeof r === 'object' && !this.#touched.has(r) && !(r instanceof Raw) && !(r instanceof Entries)) w.value(r)
      else this.value(r)
    }
    return w.finish()
  }

  value (v: unknown): void {
    const w = this.#w
    if (v instanceof Raw) { w.raw(v.bytes); return }
    if (v instanceof Entries) {
      w.mapHeader(v.entries.length)
      for (const [k, x] of v.entries) { this.value(k); this.value(x) }
      return
    }
    if (Array.isArray(v)) {
      w.arrayHeader(v.length)
      for (const x of v) this.value(x)
      return
    }
    if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array)) {
      const keys = Object.keys(v).filter(k => (v as Record<string, unknown>)[k] !== undefined)
      w.mapHeader(keys.length)
      for (const k of keys) { w.key(k); this.value((v as Record<string, unknown>)[k]) }
      return
    }
    w.value(v)
  }
}

/** A map written from its entries, in order: keys may repeat or be non-strings. */
export class Entries {
  constructor (readonly entries: Array<[unknown, unknown]>) {}
}
