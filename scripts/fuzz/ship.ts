import * as grpc from '@grpc/grpc-js'
import { collectorService, type Ack } from '../../shared/proto/index.js'
import type { Episode, Shipment } from './batches.js'

// The raw Ship stream: one stream per episode, its messages written as the
// bytes the episode holds (a Batch serialized here, or bytes that are no
// Batch at all), then half-closed. Every message must come back answered:
// by an Ack, or by the status that ended the stream before its Ack came.

export type Answer =
  | { k: 'ack', ack: Ack }
  /** the stream ended with this (non-OK) status before an Ack came */
  | { k: 'status', code: grpc.status, details: string }
  /** nothing: the stream ended OK, or not at all within the timeout */
  | { k: 'none', why: string }

export interface EpisodeAnswers {
  /** one per shipment, in order */
  answers: Answer[]
  /** acks that match no shipment */
  extra: Ack[]
}

const SHIP = collectorService().Ship

/** The wire bytes of a shipment: the .proto's own serializer, or the raw bytes as they are. */
export function wireBytes (s: Shipment): Buffer {
  return Buffer.isBuffer(s.message) ? s.message : SHIP.requestSerialize(s.message)
}

export class RawShipClient {
  readonly #client: grpc.Client

  constructor (address: string) {
    this.#client = new grpc.Client(address, grpc.credentials.createInsecure(), {
      // past every collector limit, so the collector is the one that refuses
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
    })
  }

  async send (ep: Episode, wires: readonly Buffer[], timeoutMs = 30_000): Promise<EpisodeAnswers> {
    const call = this.#client.makeBidiStreamRequest(SHIP.path, (b: Buffer) => b, SHIP.responseDeserialize) as grpc.ClientDuplexStream<Buffer, Ack>
    const acks: Ack[] = []
    call.on('data', (a: Ack) => { acks.push(a) })
    call.on('error', () => {}) // the 'status' event carries it
    return await new Promise(resolve => {
      let done = false
      const finish = (status: grpc.StatusObject | undefined, why: string): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        resolve(match(ep.shipments, acks, status, why))
      }
      const timer = setTimeout(() => { finish(undefined, `no status within ${timeoutMs} ms`); call.cancel() }, timeoutMs)
      call.on('status', (s: grpc.StatusObject) => { finish(s, 'the stream ended OK without it') })
      for (const w of wires) call.write(w)
      call.end()
    })
  }

  close (): void {
    this.#client.close()
  }
}

/** Pair acks with shipments by seq, in order; raw-bytes shipments take an ack no Batch claims. */
function match (shipments: readonly Shipment[], acks: readonly Ack[], status: grpc.StatusObject | undefined, why: string): EpisodeAnswers {
  const answers: Array<Answer | undefined> = shipments.map(() => undefined)
  const extra: Ack[] = []
  for (const a of acks) {
    let i = shipments.findIndex((s, j) => answers[j] === undefined && s.seq !== undefined && s.seq === Number(a.seq))
    if (i < 0) i = shipments.findIndex((s, j) => answers[j] === undefined && s.seq === undefined)
    if (i < 0) extra.push(a)
    else answers[i] = { k: 'ack', ack: a }
  }
  return {
    answers: answers.map(a => a ?? (status !== undefined && status.code !== grpc.status.OK
      ? { k: 'status' as const, code: status.code, details: status.details }
      : { k: 'none' as const, why })),
    extra,
  }
}
