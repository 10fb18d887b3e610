// What the kernel's folding (bpf/net.bpf.c) does, over OCSF network records
// instead of raw ones, so detection can be fed a stream with folding on and
// the same stream with it off: the first record of a flow key in a window
// goes through as it is; its repeats within the window become one record,
// the last repeat's, with count, start_time and end_time (time = end_time),
// emitted when the window closes. The key is the kernel's: class, activity,
// direction, protocol, both addresses, the server side's port (the
// responder's, dst_endpoint), the outcome (status_detail), and the process
// for outbound connects.

import type { FindingSummary } from '../../backend/detection/finding.js'
import type { EngineRig } from '../backend/helpers/records.js'

type Rec = Record<string, unknown>

const get = (r: Rec, path: string): unknown => {
  let v: unknown = r
  for (const k of path.split('.')) v = (v as Rec | undefined)?.[k]
  return v
}

const KEY = ['class_uid', 'activity_id', 'connection_info.direction_id', 'connection_info.protocol_num', 'src_endpoint.ip', 'dst_endpoint.ip', 'dst_endpoint.port', 'status_detail']
const OUTBOUND = 2

function flowKey (r: Rec): string {
  const k = KEY.map(p => String(get(r, p)))
  if (get(r, 'connection_info.direction_id') === OUTBOUND) k.push(String(get(r, 'actor.process.pid')))
  return k.join('\u0001')
}

interface Window { start: number, repeats: number, first: number, last: Rec | undefined, lastT: number }

/** `records` (in time order) folded with a window of `windowMs`. */
export function foldRecords (records: readonly Rec[], windowMs: number): Rec[] {
  const open = new Map<string, Window>()
  const out: Rec[] = []
  const summarise = (w: Window): void => {
    if (w.repeats === 0 || w.last === undefined) return
    out.push({ ...w.last, time: w.lastT, count: w.repeats, start_time: w.first, end_time: w.lastT })
    w.repeats = 0
  }
  // the sweep: every window's worth of time, the windows that have closed
  let swept = -Infinity
  const sweep = (now: number): void => {
    for (const [k, w] of open) {
      if (now - w.start < windowMs) continue
      summarise(w)
      open.delete(k)
    }
    swept = now
  }
  for (const r of records) {
    const t = r.time as number
    if (t - swept >= windowMs) sweep(t)
    const k = flowKey(r)
    const w = open.get(k)
    if (w !== undefined && t - w.start < windowMs) {
      if (w.repeats === 0) w.first = t
      w.repeats++
      w.last = r
      w.lastT = t
      continue
    }
    if (w !== undefined) summarise(w)
    open.set(k, { start: t, repeats: 0, first: t, last: undefined, lastT: t })
    out.push(r)
  }
  for (const w of open.values()) summarise(w)
  return out
}

/** Events a list of records stands for. */
export const eventsIn = (records: readonly Rec[]): number => records.reduce((n, r) => n + (typeof r.count === 'number' ? r.count : 1), 0)

/** The shipped rules' company in the folding tests: an event_count rule, where `count` matters. */
export const FOLD_RULES = {
  'zz_refused_flood.yml': `title: Refused connection flood
name: test_refused_flood
correlation:
  type: event_count
  rules: [picket_net_inbound_refused]
  group-by: [device.uid, src_endpoint.ip]
  timespan: 1m
  condition: {gte: 100}
level: low
tags: [attack.impact, attack.t1499]
`,
}

/** What a finding says, apart from times and evidence: the final state of each. */
export function outcome (rig: EngineRig): string[] {
  const last = new Map<string, FindingSummary>()
  for (const f of rig.findings) last.set(f.summary.id, f.summary)
  return [...last.values()]
    .map(s => JSON.stringify({ rule: s.rule, host: s.hostId, hosts: s.hostsTotal, sources: [...s.sources].sort(), ports: s.portCount, records: s.records }))
    .sort()
}
