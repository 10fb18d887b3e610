// Byte offsets of the packet capture's records and configuration in
// bpf/events.h. test/bpf/packet-layout.test.ts compiles bpf/layout-print.c
// against events.h and checks every number here.

/** picket_event_header.kind of packet.bpf.c's records. */
export const PKT_KIND = { NET_ICMP6: 4, DNS: 5 } as const

/** struct picket_dns_event; records are variable length (hdr.size). */
export const DNS_EVENT = {
  laddr: 40,
  raddr: 56,
  cookie: 72,
  cgroup_id: 80,
  ifindex: 88,
  uid: 92,
  lport: 96,
  rport: 98,
  family: 100,
  protocol: 102,
  skb_dir: 103,
  dns_len: 104,
  captured: 106,
  attributed: 108,
  payload: 112,
  SIZEOF: 624,
} as const

export const DNS_SNAP = 512

export const SKB_DIR = { INGRESS: 1, EGRESS: 2 } as const

export const PKT_COUNTER = {
  DNS_MATCHED: 0,
  DNS_RESERVE_FAIL: 1,
  DNS_UNATTRIBUTED: 2,
  ICMP6_MATCHED: 3,
  ICMP6_RESERVE_FAIL: 4,
  MAX: 5,
} as const

export const PKT_CONFIG = {
  dns_wakeup_bytes: 0,
  net_wakeup_bytes: 4,
  enable_dns: 8,
  enable_icmp6: 9,
  dns_server_side: 10,
  SIZEOF: 16,
} as const

export interface PktConfig {
  dnsWakeupBytes: number
  netWakeupBytes: number
  enableDns: boolean
  enableIcmp6: boolean
  dnsServerSide: boolean
}

/** Serialise to the bytes of struct picket_pkt_config. */
export function encodePktConfig (c: PktConfig): Uint8Array {
  const buf = new Uint8Array(PKT_CONFIG.SIZEOF)
  const dv = new DataView(buf.buffer)
  dv.setUint32(PKT_CONFIG.dns_wakeup_bytes, c.dnsWakeupBytes, true)
  dv.setUint32(PKT_CONFIG.net_wakeup_bytes, c.netWakeupBytes, true)
  buf[PKT_CONFIG.enable_dns] = c.enableDns ? 1 : 0
  buf[PKT_CONFIG.enable_icmp6] = c.enableIcmp6 ? 1 : 0
  buf[PKT_CONFIG.dns_server_side] = c.dnsServerSide ? 1 : 0
  return buf
}
