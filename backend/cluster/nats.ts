import { readFileSync } from 'node:fs'
import { connect, credsAuthenticator } from '@nats-io/transport-node'
import type { NatsConnection, NodeConnectionOptions } from '@nats-io/transport-node'
import { AckPolicy, DeliverPolicy, DiscardPolicy, jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager, type StreamInfo } from '@nats-io/jetstream'
import { Kvm, type KV } from '@nats-io/kv'
import type { OptSpec } from '../../shared/config.js'
import { PicketError } from '../../shared/errors.js'
import { BATCH_STREAM, batchSubject, FINDING_STREAM, FINDING_SUBJECT, LEASE_BUCKET, partitionsOf, STORE_CONSUMER, streamDescription } from './wire.js'

// Connecting to NATS and the JetStream objects cluster mode relies on. The
// backend creates the streams (it fixes P); detection nodes find them.

export type { NatsConnection } from '@nats-io/transport-node'

/** `nats://h:p,h:p` or `h:p,nats://h:p` → server list; throws naming the bad entry. */
export function parseNatsUrls (spec: string, flag: string): string[] {
  const out: string[] = []
  for (const raw of spec.split(',').map(s => s.trim()).filter(s => s !== '')) {
    const url = raw.includes('://') ? raw : `nats://${raw}`
    let u: URL
    try { u = new URL(url) } catch { throw new PicketError('PICKET_ERR_CONFIG', `${flag} '${raw}' is not a NATS URL (nats://HOST:PORT)`) }
    if (u.protocol !== 'nats:' && u.protocol !== 'tls:') throw new PicketError('PICKET_ERR_CONFIG', `${flag} '${raw}' is not a nats:// or tls:// URL`)
    out.push(url)
  }
  if (out.length === 0) throw new PicketError('PICKET_ERR_CONFIG', `${flag} needs at least one nats://HOST:PORT`)
  return out
}

/** How a node proves itself to NATS and checks the servers: the backend's, detect's and doctor's --nats-* flags. */
export interface NatsSecurity {
  /** a .creds file (user JWT and NKey seed, as nsc writes it) */
  creds?: string
  /** CA (PEM) that signs the servers' certificates; TLS is on with it, with a cert, or with a tls:// URL */
  ca?: string
  /** client certificate and key (PEM), for servers that verify clients */
  cert?: string
  key?: string
}

/** The --nats-* flags of picket backend, detect and doctor. */
export const NATS_SECURITY_OPTIONS: readonly OptSpec[] = [
  { name: 'nats-creds', type: 'path', help: 'NATS credentials file (.creds: user JWT and NKey seed, from nsc)' },
  { name: 'nats-tls-ca', type: 'path', help: 'CA (PEM) of the NATS servers\' certificates: turns TLS on (as does a tls:// URL)' },
  { name: 'nats-tls-cert', type: 'path', help: 'client certificate (PEM) for NATS servers that verify clients' },
  { name: 'nats-tls-key', type: 'path', help: 'its private key (PEM)' },
]

export interface NatsSecurityValues { 'nats-creds'?: string, 'nats-tls-ca'?: string, 'nats-tls-cert'?: string, 'nats-tls-key'?: string }

export function natsSecurity (v: NatsSecurityValues): NatsSecurity {
  return {
    ...(v['nats-creds'] !== undefined ? { creds: v['nats-creds'] } : {}),
    ...(v['nats-tls-ca'] !== undefined ? { ca: v['nats-tls-ca'] } : {}),
    ...(v['nats-tls-cert'] !== undefined ? { cert: v['nats-tls-cert'] } : {}),
    ...(v['nats-tls-key'] !== undefined ? { key: v['nats-tls-key'] } : {}),
  }
}

export function natsConnectOptions (servers: string[], sec: NatsSecurity = {}): Pick<NodeConnectionOptions, 'tls' | 'authenticator'> {
  const read = (path: string, what: string): string => {
    try { return readFileSync(path, 'utf8') } catch (err) { throw new PicketError('PICKET_ERR_CONFIG', `cannot read the NATS ${what} ${path}: ${(err as Error).message}`) }
  }
  if ((sec.cert === undefined) !== (sec.key === undefined)) throw new PicketError('PICKET_ERR_CONFIG', '--nats-tls-cert and --nats-tls-key go together')
  const tls = sec.ca !== undefined || sec.cert !== undefined || servers.some(s => s.startsWith('tls://'))
  return {
    // an object, even empty, makes the client refuse a server without TLS
    ...(tls ? { tls: { ...(sec.ca !== undefined ? { ca: read(sec.ca, 'CA') } : {}), ...(sec.cert !== undefined && sec.key !== undefined ? { cert: read(sec.cert, 'certificate'), key: read(sec.key, 'key') } : {}) } } : {}),
    ...(sec.creds !== undefined ? { authenticator: credsAuthenticator(new TextEncoder().encode(read(sec.creds, 'credentials file'))) } : {}),
  }
}

export async function connectNats (servers: string[], name: string, timeoutMs = 5000, sec: NatsSecurity = {}): Promise<NatsConnection> {
  const secure = natsConnectOptions(servers, sec)
  try {
    return await connect({ servers, name, timeout: timeoutMs, maxReconnectAttempts: -1, reconnectTimeWait: 500, pingInterval: 5000, ...secure })
  } catch (err) {
    throw new PicketError('PICKET_ERR_BRIDGE', `cannot reach NATS at ${servers.join(',')}: ${(err as Error).message}; start nats-server with JetStream (-js) there, or fix the URL${secure.tls !== undefined || secure.authenticator !== undefined ? ' (and the --nats-creds / --nats-tls-* files)' : ''}`)
  }
}

/** R3 when the server we reached is part of a cluster (JetStream needs three for a quorum that survives one loss), else R1. */
export function replicasFor (nc: NatsConnection): number {
  return nc.info?.cluster !== undefined && nc.info.cluster !== '' ? 3 : 1
}

export interface StreamPlan {
  partitions: number
  replicas: number
  /** how long batches stay: the longest detection window plus a margin, so a takeover can replay it */
  maxAgeMs: number
}

const NS = 1_000_000

/** Create the batch and finding streams and the store's consumer, or check the existing batch stream's P. */
export async function ensureStreams (nc: NatsConnection, plan: StreamPlan): Promise<{ jsm: JetStreamManager, partitions: number }> {
  const jsm = await jetstreamManager(nc, { timeout: 10_000 })
  let info: StreamInfo | undefined
  try { info = await jsm.streams.info(BATCH_STREAM) } catch { info = undefined }
  if (info === undefined) {
    info = await jsm.streams.add({
      name: BATCH_STREAM,
      description: streamDescription(plan.partitions),
      subjects: Array.from({ length: plan.partitions }, (_, p) => batchSubject(p)),
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: plan.replicas,
      max_age: plan.maxAgeMs * NS,
      // a resend after a backend restart comes within minutes: dropped by Nats-Msg-Id
      duplicate_window: Math.min(plan.maxAgeMs, 10 * 60_000) * NS,
      discard: DiscardPolicy.Old,
    })
  }
  const partitions = partitionsOf(info.config.description)
  try { await jsm.streams.info(FINDING_STREAM) } catch {
    await jsm.streams.add({
      name: FINDING_STREAM,
      subjects: [FINDING_SUBJECT],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: plan.replicas,
      max_age: 24 * 3600_000 * NS,
      duplicate_window: 2 * 60_000 * NS,
    })
  }
  try { await jsm.consumers.info(FINDING_STREAM, STORE_CONSUMER) } catch {
    await jsm.consumers.add(FINDING_STREAM, { durable_name: STORE_CONSUMER, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: 30_000 * NS, max_ack_pending: 256 })
  }
  for (let p = 0; p < partitions; p++) await ensurePartitionConsumer(jsm, p)
  return { jsm, partitions }
}

/** The batch stream as the backend made it; throws saying to start the backend first. */
export async function findBatchStream (jsm: JetStreamManager): Promise<{ partitions: number, info: StreamInfo }> {
  let info: StreamInfo
  try { info = await jsm.streams.info(BATCH_STREAM) } catch (err) {
    throw new PicketError('PICKET_ERR_BRIDGE', `stream ${BATCH_STREAM} is not there (${(err as Error).message}); start picket backend --bridge with the same NATS URL first: it creates the streams`)
  }
  return { partitions: partitionsOf(info.config.description), info }
}

/** The lease bucket: one key per partition, and a key per live node; every key lives ttlMs unless renewed. */
export async function leaseBucket (nc: NatsConnection, ttlMs: number, replicas: number): Promise<KV> {
  return await new Kvm(nc).create(LEASE_BUCKET, { ttl: ttlMs, history: 1, replicas })
}

/** The durable consumer of one partition, pulled only by the node holding its lease. */
export function partitionConsumer (partition: number): string {
  return `picket-p${partition}`
}

function partitionConsumerConfig (partition: number) {
  return {
    durable_name: partitionConsumer(partition),
    filter_subject: batchSubject(partition),
    ack_policy: AckPolicy.Explicit,
    // the stream keeps only a window's worth: whatever a consumer made late finds is still to detect
    deliver_policy: DeliverPolicy.All,
    ack_wait: 30_000 * NS,
    max_ack_pending: 512,
  }
}

export async function ensurePartitionConsumer (jsm: JetStreamManager, partition: number): Promise<void> {
  try { await jsm.consumers.info(BATCH_STREAM, partitionConsumer(partition)); return } catch {}
  await jsm.consumers.add(BATCH_STREAM, partitionConsumerConfig(partition))
}

/**
 * At a takeover: the partition's consumer made again from its ack floor when
 * a previous owner left batches delivered and unacked, or a pull request
 * open (2.9 keeps serving a dead node's pull until it expires). Those batches
 * come to the new owner now rather than after AckWait, and a stalled former
 * owner's acks and pulls land on a consumer that is gone.
 */
export async function rewindPartitionConsumer (jsm: JetStreamManager, partition: number): Promise<boolean> {
  const ci = await jsm.consumers.info(BATCH_STREAM, partitionConsumer(partition))
  if (ci.num_ack_pending === 0 && ci.num_waiting === 0) return false
  await jsm.consumers.delete(BATCH_STREAM, partitionConsumer(partition))
  await jsm.consumers.add(BATCH_STREAM, { ...partitionConsumerConfig(partition), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: ci.ack_floor.stream_seq + 1 })
  return true
}
