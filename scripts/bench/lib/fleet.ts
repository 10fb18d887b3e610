import * as grpc from '@grpc/grpc-js'
import { buildPlan, nthAddress } from '../../injector/index.js'
import { collectorClientCtor } from '../../../shared/proto/index.js'

// The simulated fleet of ingest.ts and scale.ts, built with the injector's
// planner (scripts/injector/plan.ts), so every record is shaped exactly like
// an agent's and sent in the lean form (a context and shaped records).
// Batches are packed once and sent again and again with new seqs: what is
// measured is the backend, not msgpack packing in the injector.

/** The port-scan rule's name (backend/rules/t1046_port_scan.yml). */
export const PORT_SCAN_RULE = 'picket_t1046_port_scan'

/** The lean form agents send, or the full OCSF maps of agents before it. */
export type Wire = 'lean' | 'full'

/** One batch as sent: its records, its context (empty in the full form) and how many records it holds. */
export interface Packed { bytes: Buffer, context: Buffer, count: number }

export interface Scan extends Packed {
  host: number
  source: string
}

export function hostId (prefix: string, i: number, width: number): string {
  return `${prefix}-${String(i + 1).padStart(width, '0')}`
}

/**
 * One batch of benign traffic for a host: Open and Close of 50 clients on
 * ports 443, 80 and 22. The Opens match the inbound-probe rule and are
 * counted by the port-scan correlation, so they go through the whole rule
 * path, but no client ever reaches a threshold.
 */
export function benignBatch (host: string, records: number, seed: number, startTime: number, wire: Wire = 'lean'): Packed {
  const plan = buildPlan({ hostId: host, hosts: 1, ports: 0, benign: records, batchSize: records, seed, startTime, wire })
  const h = plan.hosts[0]
  if (h.batches.length !== 1) throw new Error(`expected one benign batch for ${host}, got ${h.batches.length}`)
  return { bytes: h.batches[0], context: h.contexts[0], count: h.counts[0] }
}

/** The scanning source of scan number `i`: one source per scan (100.64.0.0/10, shared address space). */
export function scanSource (i: number): string {
  return nthAddress('100.64.0.1', i)
}

/**
 * One batch holding a whole port scan of `ports` ports from one source,
 * mixed evenly with benign records: the port-scan threshold (15 distinct
 * ports) is crossed inside this batch, so it is the batch whose arrival
 * starts the clock of the detection latency.
 */
export function scanBatch (host: string, hostIndex: number, source: string, ports: number, records: number, seed: number, startTime: number, wire: Wire = 'lean'): Scan {
  const plan = buildPlan({ hostId: host, hosts: 1, source, ports, benign: Math.max(0, records - ports), batchSize: Math.max(records, ports), seed, startTime, wire })
  const h = plan.hosts[0]
  if (h.batches.length !== 1) throw new Error(`expected one scan batch for ${host}, got ${h.batches.length}`)
  return { bytes: h.batches[0], context: h.contexts[0], count: h.counts[0], host: hostIndex, source }
}

/**
 * `n` gRPC clients to the collector, each on its own HTTP/2 connection (a
 * local subchannel pool), as separate agents would be.
 */
export function connectClients (address: string, n: number): grpc.Client[] {
  const Ctor = collectorClientCtor()
  return Array.from({ length: n }, () => new Ctor(address, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.max_send_message_length': 256 * 1024 * 1024,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
  }))
}
