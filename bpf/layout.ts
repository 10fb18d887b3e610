import { ADDR_MODE, encodeStruct, NET_CONFIG, NET_CONFIG_SIZEOF, OFF_ABSENT, putFields, TP_LAYOUT, TP_LAYOUT_FIELDS, TP_MAX, type TpLayoutField } from './abi.js'
import { need, optional, recordSize, type TpFormat } from './tracefs.js'

// Turn parsed tracepoint formats into struct picket_net_config (events.h),
// the read-only data the BPF programs read their field offsets from.

export type TpLayout = Record<TpLayoutField, number>

export interface NetConfig {
  state: TpLayout
  reset: TpLayout
  icmp: TpLayout
  wakeupBytes: number
  ignoreTgid: number
  enableState: boolean
  enableReset: boolean
  enableIcmp: boolean
  /** fold repeats of a flow key within this many ms (0: never) */
  foldWindowMs: number
}

function empty (): TpLayout {
  const l = {} as TpLayout
  for (const f of TP_LAYOUT_FIELDS) l[f] = OFF_ABSENT
  l.record_size = 0
  l.addr_mode = ADDR_MODE.NONE
  l.state_size = 4
  l.pad0 = 0
  return l
}

function checkSize (fmt: TpFormat, l: TpLayout): TpLayout {
  l.record_size = recordSize(fmt, TP_MAX)
  return l
}

function splitAddrs (fmt: TpFormat, l: TpLayout): void {
  l.addr_mode = ADDR_MODE.SPLIT
  l.family = need(fmt, 'family', [2])
  l.sport = need(fmt, 'sport', [2])
  l.dport = need(fmt, 'dport', [2])
  l.saddr = need(fmt, 'saddr', [4])
  l.daddr = need(fmt, 'daddr', [4])
  l.saddr_v6 = need(fmt, 'saddr_v6', [16])
  l.daddr_v6 = need(fmt, 'daddr_v6', [16])
}

/** sock:inet_sock_set_state */
export function stateLayout (fmt: TpFormat): TpLayout {
  const l = empty()
  l.skaddr = need(fmt, 'skaddr', [8])
  l.oldstate = need(fmt, 'oldstate', [4])
  l.newstate = need(fmt, 'newstate', [4])
  l.protocol = need(fmt, 'protocol', [2])
  splitAddrs(fmt, l)
  return checkSize(fmt, l)
}

/**
 * tcp:tcp_send_reset. Since 6.10 it carries `reason` and sockaddr-style
 * saddr/daddr[28]; before, the split sport/dport/saddr/saddr_v6 form.
 */
export function resetLayout (fmt: TpFormat): TpLayout {
  const l = empty()
  l.skaddr = need(fmt, 'skaddr', [8])
  l.oldstate = optional(fmt, 'state', [4], OFF_ABSENT)
  l.reason = optional(fmt, 'reason', [4], OFF_ABSENT)
  const saddr = fmt.fields.get('saddr')
  if (saddr !== undefined && saddr.size === 28) {
    l.addr_mode = ADDR_MODE.SOCKADDR
    l.saddr = need(fmt, 'saddr', [28])
    l.daddr = need(fmt, 'daddr', [28])
  } else {
    splitAddrs(fmt, l)
  }
  return checkSize(fmt, l)
}

/** icmp:icmp_send */
export function icmpLayout (fmt: TpFormat): TpLayout {
  const l = empty()
  l.type = need(fmt, 'type', [4])
  l.code = need(fmt, 'code', [4])
  l.saddr = need(fmt, 'saddr', [4])
  l.daddr = need(fmt, 'daddr', [4])
  l.sport = need(fmt, 'sport', [2])
  l.dport = need(fmt, 'dport', [2])
  l.addr_mode = ADDR_MODE.SPLIT
  return checkSize(fmt, l)
}

export function disabledLayout (): TpLayout {
  return empty()
}

/** Serialise to the bytes of struct picket_net_config. */
export function encodeNetConfig (c: NetConfig): Uint8Array {
  const buf = encodeStruct(NET_CONFIG, NET_CONFIG_SIZEOF, {
    wakeup_bytes: c.wakeupBytes, ignore_tgid: c.ignoreTgid,
    enable_state: Number(c.enableState), enable_reset: Number(c.enableReset), enable_icmp: Number(c.enableIcmp),
    fold_window_ms: c.foldWindowMs,
  })
  const dv = new DataView(buf.buffer)
  for (const tp of ['state', 'reset', 'icmp'] as const) putFields(dv, NET_CONFIG[tp][0], TP_LAYOUT, c[tp])
  return buf
}
