import { packRecords, packValue } from '../../shared/codec.js'
import { DIRECTION, NET_ACTIVITY } from '../../shared/ocsf/constants.js'
import { packLean } from '../../shared/ocsf/lean.js'
import { makeDevice, makeMetadata, makeNetworkActivity, type NetFields } from '../../shared/ocsf/network.js'
import type { NetworkActivity } from '../../shared/ocsf/types.js'
import { Prng } from './prng.js'

// What the injector sends, decided up front from the options and the seed:
// the same options give the same records, byte for byte (times are offsets
// from startTime). Records are built by makeNetworkActivity, the builder the
// agent's decoder uses, so they are shaped exactly like captured ones, and
// sent in the lean form (shared/ocsf/lean.ts packLean: a context per batch,
// positional records), or, with wire 'full', as the full OCSF maps older
// agents send:
//   probe of a closed TCP port  Refuse (5), inbound, "TCP RST sent: no socket listening"
//   probe of a closed UDP port  Refuse (5), inbound, ICMP port unreachable
//   probe of an open port       Open (1), inbound, LISTEN -> SYN_RECV
//   benign client connection    Open (1) then Close (2), inbound, on a few well-known open ports

export interface PlanOptions {
  /** base host id; with hosts > 1 each host is `<hostId>-0001`, ... */
  hostId?: string
  hostname?: string
  /** scanning source; with sources > 1 the next addresses follow it */
  source?: string
  /** ports probed on each host (default 200, or 1 with hosts > 1) */
  ports?: number
  /** first port probed; when unset, ports are a seeded sample of 1-1024 (1-65535 beyond 1024) */
  portBase?: number
  /** exactly these ports (overrides ports and portBase) */
  portList?: number[]
  /** probe each (host, port) this many times, in rounds (default 1) */
  repeat?: number
  hosts?: number
  sources?: number
  /** benign records (connections of many clients to a few open ports) */
  benign?: number
  benignClients?: number
  benignPorts?: number[]
  /** ports that answer on every host (their probes are Open, the rest Refuse) */
  openPorts?: number[]
  udp?: boolean
  seed?: number
  /** records per second, for timestamps and pacing; 0 = as fast as possible */
  rate?: number
  startTime?: number
  batchSize?: number
  agentVersion?: string
  /** 'lean' (default): context + shaped records, as agents send them; 'full': full OCSF maps, no context, as older agents did */
  wire?: 'lean' | 'full'
}

export interface PlannedHost {
  hostId: string
  hostname: string
  ip: string
  /** each batch's records (Batch.records) */
  batches: Buffer[]
  /** each batch's context (Batch.context); empty in the full form */
  contexts: Buffer[]
  counts: number[]
  /** ms after the start at which each batch is due (all 0 without a rate) */
  due: number[]
  records: number
}

export interface Plan {
  hosts: PlannedHost[]
  sources: string[]
  ports: number[]
  protocol: 'tcp' | 'udp'
  probeRecords: number
  benignRecords: number
  startTime: number
  expected: string[]
  describe: string
}

/** a sweep's default port: RDP, commonly swept for and closed on Linux hosts */
export const SWEEP_PORT = 3389
export const SCAN_THRESHOLD = 15
export const SWEEP_THRESHOLD = 25
export const DISTRIBUTED_SOURCES = 8

function v4ToInt (ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip)
  if (m === null) return undefined
  const parts = m.slice(1).map(Number)
  if (parts.some(p => p > 255)) return undefined
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3]
}

function intToV4 (n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

/** The i-th address after `base` (IPv4, or IPv6 by its last group). */
export function nthAddress (base: string, i: number): string {
  const v4 = v4ToInt(base)
  if (v4 !== undefined) return intToV4((v4 + i) >>> 0)
  if (!base.includes(':')) throw new RangeError(`'${base}' is not an IP address`)
  const idx = base.lastIndexOf(':')
  const last = parseInt(base.slice(idx + 1) === '' ? '0' : base.slice(idx + 1), 16)
  return base.slice(0, idx + 1) + ((last + i) & 0xffff).toString(16)
}

export function buildPlan (o: PlanOptions): Plan {
  const hostsN = o.hosts ?? 1
  const sourcesN = o.sources ?? 1
  const portsN = o.portList?.length ?? o.ports ?? (hostsN > 1 ? 1 : 200)
  const repeat = o.repeat ?? 1
  const benign = o.benign ?? 0
  const seed = o.seed ?? 1
  const rate = o.rate ?? 0
  const startTime = o.startTime ?? Date.now()
  const batchSize = o.batchSize ?? 500
  const source = o.source ?? '198.51.100.7'
  const v6 = source.includes(':')
  const baseHost = o.hostId ?? 'inject-host'
  const agentVersion = o.agentVersion ?? 'inject-scan'
  const openPorts = new Set(o.openPorts ?? [22, 80, 443])
  const benignPorts = o.benignPorts ?? [443, 80, 22]
  const proto = o.udp === true ? 17 : 6
  for (const [k, v] of Object.entries({ hosts: hostsN, sources: sourcesN, ports: portsN, benign, batchSize, repeat })) {
    if (!Number.isInteger(v) || v < 0 || (k !== 'ports' && k !== 'benign' && v < 1)) throw new RangeError(`${k} must be a positive integer`)
  }
  if (portsN > 65535) throw new RangeError('ports must be at most 65535')
  if (!(rate >= 0)) throw new RangeError('rate must be 0 (as fast as possible) or a positive number of records per second')
  const rng = new Prng(seed)

  if (o.portList !== undefined && o.portList.some(p => !Number.isInteger(p) || p < 0 || p > 65535)) throw new RangeError('portList holds a value that is not a port')
  const ports = o.portList !== undefined
    ? [...o.portList]
    : o.portBase !== undefined
    ? Array.from({ length: portsN }, (_, i) => o.portBase as number + i)
    : portsN <= 1024 ? (portsN === 1 ? [SWEEP_PORT] : rng.sample(1, 1024, portsN)) : rng.sample(1, 65535, portsN)
  const sources = Array.from({ length: sourcesN }, (_, i) => nthAddress(source, i))
  const hostIds = hostsN === 1 ? [baseHost] : Array.from({ length: hostsN }, (_, i) => `${baseHost}-${String(i + 1).padStart(4, '0')}`)
  const hostIps = hostIds.map((_, i) => v6 ? nthAddress('fd00:7069:636b::', i + 1) : intToV4(((10 << 24) + (77 << 16) + i + 1) >>> 0))
  const hostnames = hostIds.map((id, i) => o.hostname !== undefined ? (hostsN === 1 ? o.hostname : `${o.hostname}-${i + 1}`) : id)
  const ctx = hostIds.map((hostId, i) => {
    const src = { hostId, hostname: hostnames[i], agentVersion, ip: hostIps[i] }
    return { metadata: makeMetadata(src), device: makeDevice(src) }
  })

  // the global record sequence: probes (port-major, so a sweep crosses hosts early) merged evenly with benign traffic
  type Item = { host: number, f: NetFields }
  const total = portsN * hostsN + benign
  const step = rate > 0 ? 1000 / rate : 0.001
  // records are packed into a host's batch as soon as it is full (or, with a
  // rate, once it spans ~100 ms, as an agent flushes): memory holds packed
  // bytes, not record objects
  const out = hostIds.map(() => ({ batches: [] as Buffer[], contexts: [] as Buffer[], counts: [] as number[], due: [] as number[], pending: [] as NetworkActivity[], first: 0, last: 0, records: 0 }))
  const lean = (o.wire ?? 'lean') === 'lean'
  const flush = (h: number): void => {
    const o = out[h]
    if (o.pending.length === 0) return
    if (lean) {
      const b = packLean(o.pending as unknown as Array<Record<string, unknown>>)
      o.batches.push(packValue(b.records))
      o.contexts.push(packValue(b.context))
    } else {
      o.batches.push(packRecords(o.pending))
      o.contexts.push(Buffer.alloc(0))
    }
    o.counts.push(o.pending.length)
    o.due.push(rate > 0 ? o.last : 0)
    o.pending = []
  }
  let g = 0
  const emit = (it: Item): void => {
    const t = startTime + Math.floor(g * step)
    it.f.timeMs = t
    const o = out[it.host]
    if (rate > 0 && o.pending.length > 0 && t - startTime >= o.first + 100) flush(it.host)
    if (o.pending.length === 0) o.first = t - startTime
    o.pending.push(makeNetworkActivity(it.f, ctx[it.host].metadata, ctx[it.host].device))
    o.last = t - startTime
    o.records++
    if (o.pending.length >= batchSize) flush(it.host)
    g++
  }
  const probe = (k: number, h: number): Item => {
    const port = ports[k]
    const open = openPorts.has(port) && proto === 6
    const f: NetFields = {
      timeMs: 0,
      activityId: open ? NET_ACTIVITY.OPEN : NET_ACTIVITY.REFUSE,
      directionId: DIRECTION.INBOUND,
      protocolNum: proto,
      ipVersion: v6 ? 6 : 4,
      srcIp: sources[k % sourcesN],
      srcPort: 32768 + rng.int(28232),
      dstIp: hostIps[h],
      dstPort: port,
      assignmentKnown: true,
    }
    if (open) {
      f.statusDetail = 'TCP LISTEN -> SYN_RECV'
      f.unmapped = { tcp_oldstate: 'LISTEN', tcp_newstate: 'SYN_RECV' }
    } else if (proto === 6) {
      f.statusDetail = 'TCP RST sent: no socket listening (NO_SOCKET)'
      f.unmapped = { rst_reason: 'NO_SOCKET', sk_state: 'CLOSE' }
    } else {
      f.statusDetail = 'ICMP destination unreachable sent: port unreachable (type 3 code 3)'
      f.unmapped = { icmp_type: 3, icmp_code: 3 }
    }
    return { host: h, f }
  }
  const clients = o.benignClients ?? 50
  const clientIp = (i: number): string => v6 ? nthAddress('2001:db8:c1::', i + 1) : intToV4(((203 << 24) + (0 << 16) + (113 << 8) + 1 + (i % 250)) >>> 0)
  let benignLeft = benign
  let benignConn = 0
  const benignPair = (): Item[] => {
    const h = benignConn % hostsN
    const port = benignPorts[rng.int(benignPorts.length)]
    const base: NetFields = {
      timeMs: 0, activityId: NET_ACTIVITY.OPEN, directionId: DIRECTION.INBOUND, protocolNum: 6, ipVersion: v6 ? 6 : 4,
      srcIp: clientIp(rng.int(clients)), srcPort: 32768 + rng.int(28232), dstIp: hostIps[h], dstPort: port, assignmentKnown: true,
      statusDetail: 'TCP SYN_RECV -> ESTABLISHED', unmapped: { tcp_oldstate: 'SYN_RECV', tcp_newstate: 'ESTABLISHED' },
    }
    benignConn++
    const close: NetFields = { ...base, activityId: NET_ACTIVITY.CLOSE, statusDetail: 'TCP ESTABLISHED -> CLOSE', unmapped: { tcp_oldstate: 'ESTABLISHED', tcp_newstate: 'CLOSE' }, durationMs: 5 + rng.int(500) }
    return benignLeft >= 2 ? [{ host: h, f: base }, { host: h, f: close }] : [{ host: h, f: base }]
  }
  const probes = portsN * hostsN * repeat
  let done = 0
  for (let round = 0; round < repeat; round++) {
    for (let k = 0; k < portsN; k++) {
      for (let h = 0; h < hostsN; h++) {
        emit(probe(k, h))
        done++
        // keep benign traffic spread evenly among the probes
        while (benignLeft > 0 && (benign - benignLeft) * probes < done * benign) {
          for (const it of benignPair()) { emit(it); benignLeft-- }
        }
      }
    }
  }
  while (benignLeft > 0) for (const it of benignPair()) { emit(it); benignLeft-- }
  void total

  const hosts: PlannedHost[] = hostIds.map((hostId, h) => {
    flush(h)
    const o = out[h]
    return { hostId, hostname: hostnames[h], ip: hostIps[h], batches: o.batches, contexts: o.contexts, counts: o.counts, due: o.due, records: o.records }
  })

  // what the shipped rules should make of it
  const expected: string[] = []
  const portsPerSource = Math.ceil(portsN / sourcesN)
  if (portsPerSource >= SCAN_THRESHOLD) {
    const n = hostsN * Math.min(sourcesN, portsN)
    expected.push(`${n} port-scan finding${n === 1 ? '' : 's'} (one per scanned host and source)`)
  }
  const refusedPorts = ports.filter(p => !(openPorts.has(p) && proto === 6)).length
  if (hostsN >= SWEEP_THRESHOLD && refusedPorts > 0) {
    const n = Math.min(sourcesN, portsN)
    expected.push(`${n} horizontal-sweep finding${n === 1 ? '' : 's'} (one per source)`)
  }
  if (sourcesN >= DISTRIBUTED_SOURCES && portsPerSource < SCAN_THRESHOLD && refusedPorts >= SCAN_THRESHOLD) {
    expected.push(`${hostsN} distributed-scan finding${hostsN === 1 ? '' : 's'} (one per scanned host)`)
  }
  if (expected.length === 0) expected.push('no finding (under every threshold)')
  const pattern = hostsN > 1 && portsN < SCAN_THRESHOLD ? 'sweep' : sourcesN > 1 ? 'distributed scan' : portsN > 0 ? 'port scan' : 'benign only'
  const describe = `${pattern}: ${sourcesN === 1 ? sources[0] : `${sources[0]} .. ${sources[sourcesN - 1]} (${sourcesN} sources)`} → ` +
    `${hostsN === 1 ? hostIds[0] : `${hostsN} hosts (${hostIds[0]} ..)`}, ${portsN} ${proto === 6 ? 'tcp' : 'udp'} port${portsN === 1 ? '' : 's'} each`

  return { hosts, sources, ports, protocol: proto === 6 ? 'tcp' : 'udp', probeRecords: probes, benignRecords: benign, startTime, expected, describe }
}
