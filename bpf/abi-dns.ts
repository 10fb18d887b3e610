import type { FieldSpec } from './abi.js'

// The DNS class (bpf/events-dns.h) and packet.bpf.c's own structs, in the
// scheme of bpf/abi.ts (which holds the header, the kinds and the network
// record packet.bpf.c's ICMPv6 answers use). Checked by test/bpf/layout.test.ts.

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
  query_ns: 112,
  payload: 120,
  SIZEOF: 632,
} as const

export const DNS_SNAP = 512

export const SKB_DIR = { INGRESS: 1, EGRESS: 2 } as const

/** struct picket_sock_owner: the value of packet.bpf.c's sock_owner map */
export const SOCK_OWNER = { pid: 0, tgid: 4, uid: 8, pad0: 12, comm: 16, SIZEOF: 32 } as const

export const PKT_COUNTER = {
  DNS_MATCHED: 0,
  DNS_RESERVE_FAIL: 1,
  DNS_UNATTRIBUTED: 2,
  ICMP6_MATCHED: 3,
  ICMP6_RESERVE_FAIL: 4,
  MAX: 5,
} as const

export const PKT_CONFIG = {
  dns_wakeup_bytes: [0, 4],
  net_wakeup_bytes: [4, 4],
  enable_dns: [8, 1],
  enable_icmp6: [9, 1],
  dns_server_side: [10, 1],
  pad0: [11, 5],
} as const satisfies FieldSpec
export const PKT_CONFIG_SIZEOF = 16
