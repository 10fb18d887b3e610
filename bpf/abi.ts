// The kernel ABI in TypeScript: the mirror of bpf/events.h. This file holds
// what every class shares (the header, the kinds and which class each is,
// the task info) and the network class, as events.h does; each other class
// has a file of its own in the same scheme, as it has a header:
// abi-dns.ts (dns), abi-proc.ts (process), abi-file.ts (file). Records are byte offsets; the .rodata configuration
// structs are [offset, bytes] (FieldSpec), written with putFields.
// test/bpf/layout.test.ts compiles bpf/layout-print.c against events.h and
// checks every number here.

// ---- common to every class ----

export const ABI_VERSION = 1

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

/** struct picket_task_info: process and file records carry it right after the header */
export const TASK_INFO = { cgroup_id: 0, uid: 8, gid: 12, SIZEOF: 16 } as const

/** picket_event_header.kind */
export const KIND = {
  NET_STATE: 1,
  NET_RESET: 2,
  NET_ICMP: 3,
  NET_ICMP6: 4,
  DNS: 5,
  PROC_EXEC: 16,
  PROC_FORK: 17,
  PROC_EXIT: 18,
  FILE_OPEN: 32,
  FILE_UNLINK: 33,
  FILE_RENAME: 34,
  FILE_CHMOD: 35,
  FILE_MEMFD: 36,
} as const

export type EventClass = 'network' | 'dns' | 'process' | 'file'

/** Each class's kinds and the ring buffer map they arrive in (events.h's table). */
export const CLASSES: Readonly<Record<EventClass, { ring: string, kinds: readonly number[] }>> = {
  network: { ring: 'NET_EVENTS', kinds: [KIND.NET_STATE, KIND.NET_RESET, KIND.NET_ICMP, KIND.NET_ICMP6] },
  dns: { ring: 'DNS_EVENTS', kinds: [KIND.DNS] },
  process: { ring: 'PROC_EVENTS', kinds: [KIND.PROC_EXEC, KIND.PROC_FORK, KIND.PROC_EXIT] },
  file: { ring: 'FILE_EVENTS', kinds: [KIND.FILE_OPEN, KIND.FILE_UNLINK, KIND.FILE_RENAME, KIND.FILE_CHMOD, KIND.FILE_MEMFD] },
}

/** PICKET_OFF_ABSENT: a tracepoint field the running kernel's format lacks */
export const OFF_ABSENT = 0xffff
/** bytes of a syscall or sched tracepoint record proc.bpf.c and file.bpf.c copy */
export const SYS_TP_MAX = 64
/** bytes kept of a path, NUL included */
export const PATH_MAX = 256

/** A .rodata struct's fields: [offset, bytes]. */
export type FieldSpec = Readonly<Record<string, readonly [offset: number, bytes: number]>>

/** Write `values` into `dv` at `base` as the little-endian fields of `spec`; unnamed fields stay zero. */
export function putFields<S extends FieldSpec> (dv: DataView, base: number, spec: S, values: Partial<Record<keyof S, number>>): void {
  for (const [name, v] of Object.entries(values) as Array<[keyof S & string, number | undefined]>) {
    if (v === undefined) continue
    const [off, bytes] = spec[name]
    if (bytes === 1) dv.setUint8(base + off, v)
    else if (bytes === 2) dv.setUint16(base + off, v, true)
    else if (bytes === 4) dv.setUint32(base + off, v, true)
    else throw new Error(`putFields: ${name} is ${bytes} bytes, not a scalar`)
  }
}

/** The bytes of a .rodata struct of `size` bytes: `values` at their fields, the rest zero. */
export function encodeStruct<S extends FieldSpec> (spec: S, size: number, values: Partial<Record<keyof S, number>>): Uint8Array {
  const buf = new Uint8Array(size)
  putFields(new DataView(buf.buffer), 0, spec, values)
  return buf
}

// ---- the network class: NET_EVENTS ----

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
  count: 104,
  pad2: 108,
  start_ns: 112,
  SIZEOF: 120,
} as const

/**
 * Folding's flow key and window (net.bpf.c's `folds` map). User space only
 * reads its records; the layout test keeps these honest.
 */
export const FOLD_KEY = {
  laddr: 0, raddr: 16, kind: 32, port: 34, other_port: 36, family: 38, protocol: 40, direction: 41,
  oldstate: 42, newstate: 43, icmp_type: 44, icmp_code: 45, pad: 46, reason: 48, tgid: 52, SIZEOF: 56,
} as const
export const FOLD_VALUE = { ev: 0, window_ns: 120, first_ns: 128, last_ns: 136, repeats: 144, SIZEOF: 152 } as const

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
  FOLDED: 7,
  MAX: 8,
} as const

/** struct picket_tp_layout: 18 x __u16 */
export const TP_LAYOUT = {
  record_size: [0, 2],
  addr_mode: [2, 2],
  skaddr: [4, 2],
  oldstate: [6, 2],
  newstate: [8, 2],
  protocol: [10, 2],
  family: [12, 2],
  sport: [14, 2],
  dport: [16, 2],
  saddr: [18, 2],
  daddr: [20, 2],
  saddr_v6: [22, 2],
  daddr_v6: [24, 2],
  reason: [26, 2],
  type: [28, 2],
  code: [30, 2],
  state_size: [32, 2],
  pad0: [34, 2],
} as const satisfies FieldSpec
export type TpLayoutField = keyof typeof TP_LAYOUT
export const TP_LAYOUT_FIELDS = Object.keys(TP_LAYOUT) as readonly TpLayoutField[]
export const TP_LAYOUT_SIZEOF = 36

export const NET_CONFIG = {
  state: [0, TP_LAYOUT_SIZEOF],
  reset: [36, TP_LAYOUT_SIZEOF],
  icmp: [72, TP_LAYOUT_SIZEOF],
  wakeup_bytes: [108, 4],
  ignore_tgid: [112, 4],
  enable_state: [116, 1],
  enable_reset: [117, 1],
  enable_icmp: [118, 1],
  pad1: [119, 1],
  fold_window_ms: [120, 4],
} as const satisfies FieldSpec
export const NET_CONFIG_SIZEOF = 124

export const ADDR_MODE = { NONE: 0, SPLIT: 1, SOCKADDR: 2 } as const
export const TP_MAX = 128

export const AF_INET = 2
export const AF_INET6 = 10

export const TCP_STATE_NAME: Record<number, string> = {
  1: 'ESTABLISHED', 2: 'SYN_SENT', 3: 'SYN_RECV', 4: 'FIN_WAIT1', 5: 'FIN_WAIT2', 6: 'TIME_WAIT',
  7: 'CLOSE', 8: 'CLOSE_WAIT', 9: 'LAST_ACK', 10: 'LISTEN', 11: 'CLOSING', 12: 'NEW_SYN_RECV',
}
export const TCP = { ESTABLISHED: 1, SYN_SENT: 2, SYN_RECV: 3, CLOSE: 7, LISTEN: 10 } as const
