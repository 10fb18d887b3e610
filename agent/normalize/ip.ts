// Address formatting on the decode hot path. IPv4 strings are cached by
// their 32-bit value: a scan repeats the same two addresses thousands of times.

const v4Cache = new Map<number, string>()
const V4_CACHE_MAX = 4096

export function ipv4At (buf: Uint8Array, off: number): string {
  const key = ((buf[off] << 24) | (buf[off + 1] << 16) | (buf[off + 2] << 8) | buf[off + 3]) >>> 0
  let s = v4Cache.get(key)
  if (s === undefined) {
    s = `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`
    if (v4Cache.size >= V4_CACHE_MAX) v4Cache.clear()
    v4Cache.set(key, s)
  }
  return s
}

/** RFC 5952 text form: lower case, longest zero run (>= 2 groups) compressed, IPv4-mapped as ::ffff:a.b.c.d */
export function ipv6At (buf: Uint8Array, off: number): string {
  let mapped = true
  for (let i = 0; i < 10; i++) if (buf[off + i] !== 0) { mapped = false; break }
  if (mapped && buf[off + 10] === 0xff && buf[off + 11] === 0xff) return '::ffff:' + ipv4At(buf, off + 12)
  const g = new Array<number>(8)
  for (let i = 0; i < 8; i++) g[i] = (buf[off + 2 * i] << 8) | buf[off + 2 * i + 1]
  let bestStart = -1; let bestLen = 0
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j
  }
  if (bestLen < 2) bestStart = -1
  let out = ''
  for (let i = 0; i < 8; i++) {
    if (i === bestStart) {
      out += '::'
      i += bestLen - 1
      continue
    }
    if (out.length > 0 && !out.endsWith(':')) out += ':'
    out += g[i].toString(16)
  }
  return out
}
