import type { Actor } from './actors.js'
import type { Ev } from './incident.js'
import { T_FALSE, T_NUM, T_STR, T_TRUE, type Cols } from './columns.js'
import { CLASS } from '../../shared/ocsf/constants.js'
import { EVIDENCE_SLOT } from './rules/evidence.js'

// Reading the projector's columns: one cell as a group key, a number or a
// string, and a row's evidence record.

/** A group key or a counted value. */
export type Key = string | number

export function cellKey (c: Cols, i: number): Key | undefined {
  const t = c.typ[i]
  if (t === T_STR) return c.str[i] as string
  if (t === T_NUM) return c.num[i]
  if (t === T_TRUE) return 'true'
  if (t === T_FALSE) return 'false'
  return undefined
}

export function cellNum (c: Cols, i: number, d: number): number {
  return c.typ[i] === T_NUM ? c.num[i] : d
}

export function cellStr (c: Cols, i: number): string | undefined {
  return c.typ[i] === T_STR ? c.str[i] : undefined
}

const TIME = EVIDENCE_SLOT.time
const COUNT = EVIDENCE_SLOT.count

/** How many events the row at `b` stands for: its OCSF `count` (a folded flow's repeats), else 1. */
export function countAt (c: Cols, b: number): number {
  const n = cellNum(c, b + COUNT, 1)
  return n >= 1 && n <= Number.MAX_SAFE_INTEGER ? Math.floor(n) : 1
}
const HOSTNAME = EVIDENCE_SLOT['device.hostname']
const DTYPE = EVIDENCE_SLOT['device.type_id']
const ACT = EVIDENCE_SLOT.activity_id
const CLS = EVIDENCE_SLOT.class_uid
const SIP = EVIDENCE_SLOT['src_endpoint.ip']
const SPORT = EVIDENCE_SLOT['src_endpoint.port']
const DIP = EVIDENCE_SLOT['dst_endpoint.ip']
const DPORT = EVIDENCE_SLOT['dst_endpoint.port']
const PROTO = EVIDENCE_SLOT['connection_info.protocol_num']
const DIR = EVIDENCE_SLOT['connection_info.direction_id']
const QNAME = EVIDENCE_SLOT['query.hostname']

/** The evidence of the row at `b`, seen at event time `t`. */
export function evidenceAt (actor: Actor, c: Cols, b: number, t: number): Ev {
  return {
    t,
    rt: cellNum(c, b + TIME, NaN),
    host: actor.hostId,
    hostname: cellStr(c, b + HOSTNAME) ?? actor.hostname,
    dtype: cellNum(c, b + DTYPE, -1),
    sip: cellStr(c, b + SIP),
    sport: cellNum(c, b + SPORT, -1),
    dip: cellStr(c, b + DIP),
    dport: cellNum(c, b + DPORT, -1),
    act: cellNum(c, b + ACT, 0),
    proto: cellNum(c, b + PROTO, -1),
    dir: cellNum(c, b + DIR, -1),
    cls: cellNum(c, b + CLS, CLASS.NETWORK_ACTIVITY.uid),
    qname: cellStr(c, b + QNAME),
  }
}

/** The source of the row at `b`. */
export function sourceAt (c: Cols, b: number): string | undefined {
  return cellStr(c, b + SIP)
}

/** The destination port of the row at `b`, -1 when it has none. */
export function portAt (c: Cols, b: number): number {
  return cellNum(c, b + DPORT, -1)
}
