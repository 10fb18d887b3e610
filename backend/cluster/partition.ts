import { DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream'
import type { Logger } from '../../shared/logger.js'
import type { Bridge, SubmitResult } from '../bridge/types.js'
import { partitionConsumer, rewindPartitionConsumer } from './nats.js'
import { BATCH_STREAM, batchSubject, decodeBatch } from './wire.js'

// One partition on the node that holds its lease. First the replay: the
// partition's batches from now minus the longest window up to the last one
// stored at takeover, through an ordered (unacked, throwaway) consumer, so the
// sliding windows hold what the previous owner's held. Then live: the
// partition's durable consumer with explicit acks, a batch acked once the
// detection plane answered it (its findings published and stored by
// JetStream). What the replay already ran and the durable consumer delivers
// again is a duplicate by (host, instance, seq) in the engine.

export interface PartitionOptions {
  partition: number
  js: JetStreamClient
  jsm: JetStreamManager
  /** the in-process detection plane of this node */
  bridge: Bridge
  replayMs: number
  /** still ours? checked before each batch */
  holds: () => boolean
  logger: Logger
  onReplayed: (seconds: number, batches: number) => void
  /** the runner stopped on an error: give the lease up so the partition is taken again */
  onFailed: () => void
}

const IN_FLIGHT = 256

export class PartitionRunner {
  readonly #o: PartitionOptions
  #messages: ConsumerMessages | undefined
  #stopped = false
  #done: Promise<void> = Promise.resolve()
  readonly #inFlight = new Set<Promise<void>>()

  constructor (o: PartitionOptions) {
    this.#o = o
  }

  start (): void {
    this.#done = this.#run().catch(err => {
      if (this.#stopped) return
      this.#o.logger.error({ err, partition: this.#o.partition }, 'partition consumer failed; giving its lease up for a node (this one included) to take it again')
      this.#o.onFailed()
    })
  }

  async #run (): Promise<void> {
    const t0 = performance.now()
    const n = await this.#replay()
    if (this.#stopped) return
    this.#o.onReplayed((performance.now() - t0) / 1000, n)
    if (await rewindPartitionConsumer(this.#o.jsm, this.#o.partition)) this.#o.logger.info({ partition: this.#o.partition }, 'partition consumer rewound to its ack floor: the previous owner left batches unacked or a pull open')
    if (this.#stopped) return
    const c = await this.#o.js.consumers.get(BATCH_STREAM, partitionConsumer(this.#o.partition))
    if (this.#stopped) return
    const messages = await c.consume({ max_messages: IN_FLIGHT })
    this.#messages = messages
    if (this.#stopped) { await messages.close(); return }
    for await (const m of messages) {
      if (this.#stopped || !this.#o.holds()) break
      this.#handle(m, true)
      if (this.#inFlight.size >= IN_FLIGHT) await Promise.race(this.#inFlight)
    }
  }

  async #replay (): Promise<number> {
    const { jsm, js, partition, replayMs } = this.#o
    const subject = batchSubject(partition)
    const last = await jsm.streams.getMessage(BATCH_STREAM, { last_by_subj: subject }).catch(() => null)
    const from = Date.now() - replayMs
    if (last === null || last.time.getTime() < from) return 0
    const c = await js.consumers.get(BATCH_STREAM, { filter_subjects: subject, deliver_policy: DeliverPolicy.StartTime, opt_start_time: new Date(from).toISOString() })
    const messages = await c.consume({ max_messages: IN_FLIGHT })
    this.#messages = messages
    if (this.#stopped) { await messages.close(); return 0 }
    let n = 0
    for await (const m of messages) {
      if (this.#stopped) break
      this.#handle(m, false)
      n++
      if (this.#inFlight.size >= IN_FLIGHT) await Promise.race(this.#inFlight)
      if (m.seq >= last.seq) break
    }
    await messages.close()
    await Promise.all(this.#inFlight)
    return n
  }

  #handle (m: JsMsg, ack: boolean): void {
    let b
    try {
      b = decodeBatch(m.data)
    } catch (err) {
      this.#o.logger.error({ err: (err as Error).message, partition: this.#o.partition, seq: m.seq }, 'not a batch; acked and dropped')
      if (ack) m.ack()
      return
    }
    const p: Promise<void> = this.#o.bridge.submit(b).then((r: SubmitResult) => {
      if (!ack) return
      if (r.status === 'retry') { m.nak(1000); return }
      if (r.status === 'refused') this.#o.logger.warn({ partition: this.#o.partition, host: b.hostId, seq: b.seq, reason: r.reason }, `batch refused by detection: ${r.message}`)
      m.ack()
    }).finally(() => { this.#inFlight.delete(p) })
    this.#inFlight.add(p)
  }

  /** Stop pulling; batches already handed to detection finish (their acks may be refused by now: they are redelivered to the next owner). */
  async stop (): Promise<void> {
    this.#stopped = true
    await this.#messages?.close().catch(() => {})
    await this.#done
    await Promise.all(this.#inFlight)
  }
}
