import { ipToBytes } from '../../agent/normalize/dns-names.js'
import { HEADER, KIND } from '../../bpf/abi.js'
import { DNS_EVENT, DNS_SNAP, SKB_DIR } from '../../bpf/abi-dns.js'

// DNS_EVENTS records built in memory, as packet.bpf.c writes them, for the
// normaliser's unit tests.

export interface RawDns {
  payload: Uint8Array
  /** the message's declared length (default: the payload's) */
  dnsLen?: number
  bootNs?: bigint
  pid?: number
  tgid?: number
  comm?: string
  uid?: number
  attributed?: boolean
  family?: 2 | 10
  laddr?: string
  raddr?: string
  lport?: number
  rport?: number
  protocol?: number
  skbDir?: number
  cookie?: bigint
  /** a response: its query's boot_ns, as the kernel's join found it (default 0: none) */
  queryNs?: bigint
}

/** The records one after the other, each cut at the snap length like the kernel's. */
export function encodeDnsRecords (recs: readonly RawDns[]): Uint8Array {
  const sizes = recs.map(r => DNS_EVENT.payload + Math.ceil(Math.min(r.payload.length, DNS_SNAP) / 8) * 8)
  const buf = new Uint8Array(sizes.reduce((a, b) => a + b, 0))
  const dv = new DataView(buf.buffer)
  let p = 0
  recs.forEach((r, i) => {
    const captured = Math.min(r.payload.length, DNS_SNAP)
    const family = r.family ?? 2
    dv.setUint16(p + HEADER.kind, KIND.DNS, true)
    dv.setUint16(p + HEADER.size, sizes[i], true)
    dv.setBigUint64(p + HEADER.boot_ns, r.bootNs ?? 1_000_000_000n, true)
    dv.setUint32(p + HEADER.pid, r.pid ?? 4242, true)
    dv.setUint32(p + HEADER.tgid, r.tgid ?? 4242, true)
    buf.set(Buffer.from(r.comm ?? 'curl', 'latin1').subarray(0, 15), p + HEADER.comm)
    const ip = (s: string, off: number): void => {
      const b = new Uint8Array(16)
      ipToBytes(s, b)
      buf.set(family === 2 ? b.subarray(12) : b, off)
    }
    ip(r.laddr ?? (family === 2 ? '10.0.0.5' : 'fd00::5'), p + DNS_EVENT.laddr)
    ip(r.raddr ?? (family === 2 ? '10.0.0.53' : 'fd00::53'), p + DNS_EVENT.raddr)
    dv.setBigUint64(p + DNS_EVENT.cookie, r.cookie ?? 77n, true)
    dv.setUint32(p + DNS_EVENT.ifindex, 2, true)
    dv.setUint32(p + DNS_EVENT.uid, r.uid ?? 1000, true)
    dv.setUint16(p + DNS_EVENT.lport, r.lport ?? 40000, true)
    dv.setUint16(p + DNS_EVENT.rport, r.rport ?? 53, true)
    dv.setUint16(p + DNS_EVENT.family, family, true)
    buf[p + DNS_EVENT.protocol] = r.protocol ?? 17
    buf[p + DNS_EVENT.skb_dir] = r.skbDir ?? SKB_DIR.EGRESS
    dv.setUint16(p + DNS_EVENT.dns_len, r.dnsLen ?? r.payload.length, true)
    dv.setUint16(p + DNS_EVENT.captured, captured, true)
    buf[p + DNS_EVENT.attributed] = r.attributed === false ? 0 : 1
    dv.setBigUint64(p + DNS_EVENT.query_ns, r.queryNs ?? 0n, true)
    buf.set(r.payload.subarray(0, captured), p + DNS_EVENT.payload)
    p += sizes[i]
  })
  return buf
}
