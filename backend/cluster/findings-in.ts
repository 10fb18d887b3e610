import { jetstream, type ConsumerMessages } from '@nats-io/jetstream'
import type { Logger } from '../../shared/logger.js'
import type { FindingEvent } from '../detection/finding.js'
import type { FleetDelta } from '../detection/protocol.js'
import type { AlertStore } from '../store/index.js'
import type { NatsConnection } from './nats.js'
import { decodeFindings, FINDING_STREAM, STORE_CONSUMER } from './wire.js'

// The backend's side of picket.findings: the one writer of the store. A
// message is acked once its findings are committed (the pipeline's promise),
// so a backend that dies first gets it again; a Create seen twice is the same
// row, since finding ids are deterministic. A message from a lease token
// older than the partition's fence is refused and acked: its writer lost the
// partition.

const MAX_IN_FLIGHT = 256

export interface FindingsInSink {
  findings: (events: FindingEvent[]) => Promise<void>
  fleet: (deltas: FleetDelta[]) => Promise<void>
  /** a message refused by fencing */
  fenced: (partition: number, node: string, token: number) => void
}

export class FindingsIn {
  readonly #nc: NatsConnection
  readonly #store: AlertStore
  readonly #sink: FindingsInSink
  readonly #logger: Logger
  #messages: ConsumerMessages | undefined
  #done: Promise<void> = Promise.resolve()

  constructor (nc: NatsConnection, store: AlertStore, sink: FindingsInSink, logger: Logger) {
    this.#nc = nc
    this.#store = store
    this.#sink = sink
    this.#logger = logger
  }

  async start (): Promise<void> {
    const consumer = await jetstream(this.#nc).consumers.get(FINDING_STREAM, STORE_CONSUMER)
    const messages = await consumer.consume({ max_messages: MAX_IN_FLIGHT })
    this.#messages = messages
    this.#done = (async () => {
      // messages are admitted (fence) and pushed in order, and acked as their
      // commits return: one store transaction takes many messages, where
      // waiting for each commit before the next made a queue of seconds
      const inFlight = new Set<Promise<void>>()
      for await (const m of messages) {
        let f
        try {
          f = decodeFindings(m.data)
        } catch (err) {
          // undecodable: acked, or it comes back for ever
          this.#logger.error({ err, seq: m.seq }, `a message on ${FINDING_STREAM} is not a finding message; dropped`)
          m.ack()
          continue
        }
        if (!this.#store.admitFence(f.partition, f.token)) {
          this.#sink.fenced(f.partition, f.node, f.token)
          m.ack()
          continue
        }
        const stored: Array<Promise<void>> = []
        if (f.findings !== undefined && f.findings.length > 0) stored.push(this.#sink.findings(f.findings))
        if (f.fleet !== undefined && f.fleet.length > 0) stored.push(this.#sink.fleet(f.fleet))
        const p: Promise<void> = Promise.all(stored).then(() => { m.ack() }, (err: unknown) => {
          this.#logger.error({ err, seq: m.seq }, `a message on ${FINDING_STREAM} could not be stored; dropped`)
          m.ack()
        }).finally(() => { inFlight.delete(p) })
        inFlight.add(p)
        if (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight)
      }
      await Promise.all(inFlight)
    })()
  }

  async close (): Promise<void> {
    await this.#messages?.close()
    await this.#done.catch(() => {})
  }
}
