// IP parsing for CIDR matching. Addresses are compared as 128-bit values in
// four uint32 words; IPv4 (and IPv4-mapped IPv6, ::ffff:a.b.c.d) maps to
// ::ffff:a.b.c.d so one v4 CIDR also matches the mapped form the kernel
// reports for dual-stack sockets.

export type Ip128 = [number, number, number, number]

export function parseIPv4 (s: string): number | undefined {
  let n = 0
  let parts = 0
  let cur = -1
  for (let i = 0; i <= s.length; i++) {
    const c = i === s.length ? 46 : s.charCodeAt(i)
    if (c === 46) {
      if (cur < 0 || cur > 255) return undefined
      n = n * 256 + cur
      parts++
      cur = -1
    } else if (c >= 48 && c <= 57) {
      cur = cur < 0 ? c - 48 : cur * 10 + (c - 48)
      if (cur > 255) return undefined
    } else {
      return undefined
    }
  }
  return parts === 4 ? n : undefined
}

export function parseIp (s: string): Ip128 | undefined {
  const v4 = parseIPv4(s)
  if (v4 !== undefined) return [0, 0, 0xffff, v4]
  if (!s.includes(':')) return undefined
  const zone = s.indexOf('%')
  const text = zone >= 0 ? s.slice(0, zone) : s
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const parse = (part: string): number[] | undefined => {
    if (part === '') return []
    const out: number[] = []
    const groups = part.split(':')
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i]
      if (i === groups.length - 1 && g.includes('.')) {
        const v = parseIPv4(g)
        if (v === undefined) return undefined
        out.push(v >>> 16, v & 0xffff)
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
        out.push(parseInt(g, 16))
      }
    }
    return out
  }
  const head = parse(halves[0])
  const tail = halves.length === 2 ? parse(halves[1]) : []
  if (head === undefined || tail === undefined) return undefined
  let words: number[]
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length
    if (fill < 1) return undefined
    words = [...head, ...new Array<number>(fill).fill(0), ...tail]
  } else {
    words = head
  }
  if (words.length !== 8) return undefined
  return [
    (words[0] * 65536 + words[1]) >>> 0,
    (words[2] * 65536 + words[3]) >>> 0,
    (words[4] * 65536 + words[5]) >>> 0,
    (words[6] * 65536 + words[7]) >>> 0,
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
