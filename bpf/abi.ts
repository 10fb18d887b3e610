// The kernel ABI in TypeScript: the mirror of bpf/events.h (record offsets,
// kinds, counters, the loader's read-only configuration). test/bpf/layout.test.ts
// compiles bpf/layout-print.c against events.h and checks every number here.

export const HEADER = {
  kind: 0,
  size: 2,
  cpu: 4,
  boot_ns: 8,
  pid: 16,
  tgid: 20,
  comm: 24,
  COMM_LEN: 16,
  SIZEOF: 40,
} as const

export const NET_EVENT = {
  laddr: 40,
  raddr: 56,
  lport: 72,
  rport: 74,
  family: 76,
  protocol: 78,
  direction: 79,
  oldstate: 80,
  newstate: 81,
  icmp_type: 82,
  icmp_code: 83,
  reason: 84,
  sock: 88,
  duration_ns: 96,
  SIZEOF: 104,
} as const

export const KIND = { NET_STATE: 1, NET_RESET: 2, NET_ICMP: 3 } as const

export const KDIR = { UNKNOWN: 0, INBOUND: 1, OUTBOUND: 2, LOCAL: 4 } as const

export const RST_REASON_UNKNOWN = 0xffffffff

export const COUNTER = {
  STATE_MATCHED: 0,
  STATE_RESERVE_FAIL: 1,
  RESET_MATCHED: 2,
  RESET_RESERVE_FAIL: 3,
  ICMP_MATCHED: 4,
  ICMP_RESERVE_FAIL: 5,
  READ_FAIL: 6,
  MAX: 7,
} as const

// struct picket_tp_layout: 18 x __u16
export const TP_LAYOUT_FIELDS = [
  'record_size', 'addr_mode', 'skaddr', 'oldstate', 'newstate', 'protocol', 'family', 'sport', 'dport',
  'saddr', 'daddr', 'saddr_v6', 'daddr_v6', 'reason', 'type', 'code', 'state_size', 'pad0',
] as const
export type TpLayoutField = typeof TP_LAYOUT_FIELDS[number]
export const TP_LAYOUT_SIZEOF = 36

export const NET_CONFIG = {
  state: 0,
  reset: 36,
  icmp: 72,
  wakeup_bytes: 108,
  ignore_tgid: 112,
  enable_state: 116,
  enable_reset: 117,
  enable_icmp: 118,
  SIZEOF: 124,
} as const

export const OFF_ABSENT = 0xffff
export const ADDR_MODE = { NONE: 0, SPLIT: 1, SOCKADDR: 2 } as const
export const TP_MAX = 128

export const AF_INET = 2
export const AF_INET6 = 10

export const TCP_STATE_NAME: Record<number, string> = {
  1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT',
  7: 'CLOSE', 8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING', 12: 'NEW_SYN_RECV',
}
export const TCP = { ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, CLOSE: 7, LISTEN: 10 } as const
