import { packValue, unpackValue } from '../../shared/codec.js'
import { PicketError } from '../../shared/errors.js'
import { routeHost } from '../bridge/pool.js'
import type { BridgeBatch } from '../bridge/types.js'
import type { FindingEvent } from '../detection/finding.js'
import type { FleetDelta } from '../detection/protocol.js'

// What travels through NATS in cluster mode, declared once for the backend
// (publisher of batches, consumer of findings) and the detection nodes.
// Every message decodes on its own: a replayed or redelivered batch lands on
// a node that never saw the ones before it.

export const BATCH_STREAM = 'PICKET_BATCHES'
export const FINDING_STREAM = 'PICKET_FINDINGS'
export const FINDING_SUBJECT = 'picket.findings'
export const LEASE_BUCKET = 'picket_leases'
/** the backend's durable consumer of the findings stream (one writer) */
export const STORE_CONSUMER = 'picket-store'
export const DEFAULT_PARTITIONS = 16
/** Written in the batch stream's description, so every node reads P from the stream it uses. */
const PARTITIONS_TAG = /partitions=(\d+)/

export function batchSubject (partition: number): string {
  return `picket.batches.${partition}`
}

/** The same FNV-1a as the in-process pool's routing, so a host lands on one partition whatever reads it. */
export function partitionOf (hostId: string, partitions: number): number {
  return routeHost(hostId, partitions)
}

export function batchMsgId (b: Pick<BridgeBatch, 'hostId' | 'instance' | 'seq'>): string {
  return `${b.hostId}:${b.instance}:${b.seq}`
}

export function streamDescription (partitions: number): string {
  return `Picket batches by host, partitions=${partitions}`
}

export function partitionsOf (description: string | undefined): number {
  const m = PARTITIONS_TAG.exec(description ?? '')
  if (m === null) throw new PicketError('PICKET_ERR_BRIDGE', `stream ${BATCH_STREAM} does not say its partition count in its description ('${description ?? ''}'); it was not created by picket backend --bridge: delete it (nats stream rm ${BATCH_STREAM}) and restart the backend`)
  return Number(m[1])
}

/**
 * The whole BridgeBatch minus `owned` (a promise about this process's
 * memory): a field the collector adds travels without this code knowing it.
 */
export function encodeBatch (b: BridgeBatch): Uint8Array {
  const { owned: _owned, ...rest } = b
  return packValue(rest)
}

export function decodeBatch (bytes: Uint8Array): BridgeBatch {
  const v = unpackValue(bytes) as Partial<BridgeBatch> | null
  if (v === null || typeof v !== 'object' || typeof v.hostId !== 'string' || typeof v.seq !== 'number' || !(v.records instanceof Uint8Array)) {
    throw new PicketError('PICKET_ERR_BRIDGE', 'a message on the batch stream is not a Picket batch')
  }
  return { ...v, owned: false } as BridgeBatch
}

/** What a detection node sends the store: fenced by the lease it held on the partition when it wrote. */
export interface FindingMessage {
  node: string
  partition: number
  /** the KV revision at which the node took the lease: larger for every later owner */
  token: number
  findings?: FindingEvent[]
  fleet?: FleetDelta[]
}

export function encodeFindings (m: FindingMessage): Uint8Array {
  return packValue(m)
}

export function decodeFindings (bytes: Uint8Array): FindingMessage {
  const v = unpackValue(bytes) as FindingMessage | null
  if (v === null || typeof v !== 'object' || typeof v.partition !== 'number' || typeof v.token !== 'number') {
    throw new PicketError('PICKET_ERR_BRIDGE', `a message on ${FINDING_SUBJECT} is not a Picket finding message`)
  }
  return v
}

export function leaseKey (partition: number): string {
  return `p.${partition}`
}

export function nodeKey (node: string): string {
  return `node.${node}`
}
