import { jetstream, type JetStreamClient } from '@nats-io/jetstream'
import { PicketError } from '../../shared/errors.js'
import type { Logger } from '../../shared/logger.js'
import { connectNats, ensureStreams, replicasFor, type NatsConnection, type NatsSecurity } from '../cluster/nats.js'
import { BATCH_STREAM, batchMsgId, batchSubject, DEFAULT_PARTITIONS, encodeBatch, partitionOf } from '../cluster/wire.js'
import type { Bridge, BridgeBatch, BridgeHealth, SubmitResult, WorkerSnapshot } from './types.js'

// The cluster bridge: every accepted batch is published to JetStream on its
// host's partition subject, and submit() answers once the stream stored it
// (the PubAck, after the replicas' quorum): the agent's ack follows it.
// Detection runs on `picket detect` nodes; their findings come back on their
// own stream (cluster/findings-in.ts). Nats-Msg-Id is (host, instance, seq),
// so a batch an agent resends after a backend restart is a duplicate there.

export interface JetStreamBridgeOptions {
  servers: string[]
  /** NATS credentials and TLS */
  security?: NatsSecurity
  /** partitions when the backend creates the stream; an existing stream keeps its own */
  partitions?: number
  /** replicas of the streams (default: 3 in a cluster, else 1) */
  replicas?: number
  /** how long batches are kept: the longest detection window plus a margin */
  maxAgeMs: number
  logger: Logger
  /** a PubAck not back within this is answered RETRY */
  publishTimeoutMs?: number
}

export class JetStreamBridge implements Bridge {
  readonly kind = 'NATS JetStream'
  readonly #o: JetStreamBridgeOptions
  #nc: NatsConnection | undefined
  #js: JetStreamClient | undefined
  #partitions = 0
  #inFlight = 0
  #lastError: string | undefined

  constructor (opts: JetStreamBridgeOptions) {
    this.#o = opts
  }

  get partitions (): number { return this.#partitions }
  get connection (): NatsConnection | undefined { return this.#nc }

  async start (): Promise<void> {
    const nc = await connectNats(this.#o.servers, 'picket-backend', 5000, this.#o.security)
    this.#nc = nc
    let partitions: number
    try {
      ({ partitions } = await ensureStreams(nc, {
        partitions: this.#o.partitions ?? DEFAULT_PARTITIONS,
        replicas: this.#o.replicas ?? replicasFor(nc),
        maxAgeMs: this.#o.maxAgeMs,
      }))
    } catch (err) {
      await this.close()
      throw new PicketError('PICKET_ERR_BRIDGE', `NATS at ${this.#o.servers.join(',')} answered but the JetStream streams could not be made: ${(err as Error).message}; is JetStream on (nats-server -js), and in a cluster are three servers up?`)
    }
    this.#partitions = partitions
    this.#js = jetstream(nc, { timeout: this.#o.publishTimeoutMs ?? 10_000 })
    this.#o.logger.info({ servers: this.#o.servers, partitions, stream: BATCH_STREAM }, 'bridge: publishing batches to NATS JetStream')
  }

  async submit (b: BridgeBatch): Promise<SubmitResult> {
    const js = this.#js
    if (js === undefined) return { status: 'retry', message: 'the NATS bridge is not connected; resend the batch' }
    this.#inFlight++
    try {
      const ack = await js.publish(batchSubject(partitionOf(b.hostId, this.#partitions)), encodeBatch(b), { msgID: batchMsgId(b) })
      this.#lastError = undefined
      return ack.duplicate ? { status: 'duplicate' } : { status: 'accepted', records: b.count }
    } catch (err) {
      this.#lastError = (err as Error).message
      return { status: 'retry', message: `JetStream did not store the batch (${this.#lastError}); resend it` }
    } finally {
      this.#inFlight--
    }
  }

  async health (): Promise<BridgeHealth> {
    const nc = this.#nc
    const up = nc !== undefined && !nc.isClosed() && this.#js !== undefined
    let detail = up ? `connected to ${nc.getServer()}, ${this.#partitions} partitions` : 'not connected to NATS'
    let ok = up
    if (up) {
      try {
        const jsm = await (this.#js as JetStreamClient).jetstreamManager()
        const info = await jsm.streams.info(BATCH_STREAM)
        detail += `, stream ${BATCH_STREAM} holds ${info.state.messages} batches`
      } catch (err) {
        ok = false
        detail += `, but stream ${BATCH_STREAM} cannot be read: ${(err as Error).message}`
      }
    }
    if (this.#lastError !== undefined) detail += `; last publish failed: ${this.#lastError}`
    return { kind: this.kind, reachable: up, ok, detail, workers: [] }
  }

  /** Refused batches never reach the stream: the detection nodes' dedup has no floor to move. */
  skip (): void {}

  async flush (): Promise<void> {
    await this.#nc?.flush()
  }

  queueDepths (): number[] {
    return [this.#inFlight]
  }

  snapshot (): WorkerSnapshot[] {
    return []
  }

  async close (): Promise<void> {
    const nc = this.#nc
    this.#nc = undefined
    this.#js = undefined
    if (nc !== undefined && !nc.isClosed()) await nc.drain().catch(() => nc.close())
  }
}
