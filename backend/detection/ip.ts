// IP parsing for CIDR matching and for checking records. Addresses are
// compared as 128-bit values in four uint32 words; IPv4 (and IPv4-mapped
// IPv6, ::ffff:a.b.c.d) maps to ::ffff:a.b.c.d so one v4 CIDR also matches
// the mapped form the kernel reports for dual-stack sockets. One scanner,
// reading the string in place, serves both parseIp and isIp: every record's
// address is checked on the hot path, so checking allocates nothing.

export type Ip128 = [number, number, number, number]

/** The dotted quad in s[from, to) as a uint32, or -1. */
function v4At (s: string, from: number, to: number): number {
  let n = 0
  let parts = 0
  let cur = -1
  for (let i = from; i <= to; i++) {
    const c = i === to ? 46 : s.charCodeAt(i)
    if (c === 46) {
      if (cur < 0 || cur > 255) return -1
      n = n * 256 + cur
      parts++
      cur = -1
    } else if (c >= 48 && c <= 57) {
      // a leading zero is refused, as inet_pton and node:net do: 010 could be read as octal
      if (cur === 0) return -1
      cur = cur < 0 ? c - 48 : cur * 10 + (c - 48)
      if (cur > 255) return -1
    } else {
      return -1
    }
  }
  return parts === 4 ? n : -1
}

export function parseIPv4 (s: string): number | undefined {
  const n = v4At(s, 0, s.length)
  return n < 0 ? undefined : n
}

function hexDigit (c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 97 && c <= 102) return c - 87
  if (c >= 65 && c <= 70) return c - 55
  return -1
}

// the 16-bit groups of the last address scan6 read (head, then tail), and how many
const words = new Array<number>(10).fill(0)
let count = 0

/**
 * Scan the groups of s[from, to) (one side of a '::') into `words` from
 * index `at`; a dotted quad may end the side. The new count, or -1.
 */
function groupsAt (s: string, from: number, to: number, at: number): number {
  if (from === to) return at
  let g = from
  for (;;) {
    let end = s.indexOf(':', g)
    if (end < 0 || end > to) end = to
    if (at > 8) return -1
    if (end === to && s.lastIndexOf('.', to - 1) >= g) {
      const v = v4At(s, g, to)
      if (v < 0) return -1
      words[at++] = v >>> 16
      words[at++] = v & 0xffff
      return at
    }
    const len = end - g
    if (len < 1 || len > 4) return -1
    let w = 0
    for (let i = g; i < end; i++) {
      const d = hexDigit(s.charCodeAt(i))
      if (d < 0) return -1
      w = w * 16 + d
    }
    words[at++] = w
    if (end === to) return at
    g = end + 1
  }
}

/**
 * Scan s as an IPv6 address (a %zone is ignored) into `words`: the number of
 * groups before its '::' (8 without one), or -1. `count` says how many in all.
 */
function scan6 (s: string): number {
  if (s.indexOf(':') < 0) return -1
  const zone = s.indexOf('%')
  const to = zone >= 0 ? zone : s.length
  const gap = s.indexOf('::')
  if (gap < 0 || gap >= to) {
    count = groupsAt(s, 0, to, 0)
    return count === 8 ? 8 : -1
  }
  const again = s.indexOf('::', gap + 2)
  if (again >= 0 && again < to) return -1
  const head = groupsAt(s, 0, gap, 0)
  if (head < 0) return -1
  count = groupsAt(s, gap + 2, to, head)
  // '::' stands for at least one group
  return count < 0 || count > 7 ? -1 : head
}

/** Does s parse as an IPv4 or IPv6 address? */
export function isIp (s: string): boolean {
  return v4At(s, 0, s.length) >= 0 || scan6(s) >= 0
}

export function parseIp (s: string): Ip128 | undefined {
  const v4 = v4At(s, 0, s.length)
  if (v4 >= 0) return [0, 0, 0xffff, v4]
  const head = scan6(s)
  if (head < 0) return undefined
  // the tail's groups end the address; '::' fills zeros between
  const tailAt = 8 - (count - head)
  const w = (i: number): number => i < head ? words[i] : i >= tailAt ? words[i - tailAt + head] : 0
  return [
    (w(0) * 65536 + w(1)) >>> 0,
    (w(2) * 65536 + w(3)) >>> 0,
    (w(4) * 65536 + w(5)) >>> 0,
    (w(6) * 65536 + w(7)) >>> 0,
  ]
}

export interface Cidr { net: Ip128, bits: number, text: string }

/** Parse `a.b.c.d/n` or `v6/n` (a bare address is a /32 or /128). */
export function parseCidr (text: string): Cidr | undefined {
  const slash = text.indexOf('/')
  const addr = slash < 0 ? text : text.slice(0, slash)
  const ip = parseIp(addr)
  if (ip === undefined) return undefined
  const v4 = parseIPv4(addr) !== undefined
  let bits = v4 ? 32 : 128
  if (slash >= 0) {
    const b = text.slice(slash + 1)
    if (!/^\d{1,3}$/.test(b)) return undefined
    bits = Number(b)
    if (bits > (v4 ? 32 : 128)) return undefined
  }
  if (v4) bits += 96
  return { net: maskIp(ip, bits), bits, text }
}

function maskIp (ip: Ip128, bits: number): Ip128 {
  const out: Ip128 = [0, 0, 0, 0]
  for (let w = 0; w < 4; w++) {
    const keep = Math.max(0, Math.min(32, bits - w * 32))
    const mask = keep === 0 ? 0 : keep === 32 ? 0xffffffff : (0xffffffff << (32 - keep)) >>> 0
    out[w] = (ip[w] & mask) >>> 0
  }
  return out
}

export function cidrContains (c: Cidr, ip: Ip128): boolean {
  const m = maskIp(ip, c.bits)
  return m[0] === c.net[0] && m[1] === c.net[1] && m[2] === c.net[2] && m[3] === c.net[3]
}
