import * as grpc from '@grpc/grpc-js'
import { collectorService, type Ack } from '../../shared/proto/index.js'
import type { Episode, Shipment } from './batches.js'

// The raw Ship stream: one stream per episode, its messages written as the
// bytes the episode holds (a Batch serialized here, or bytes that are no
// Batch at all), then half-closed. Every message must come back answered:
// by an Ack, or by the status that ended the stream before its Ack came.
//
// Which ack answers which message: the collector refuses some batches itself
// at once and answers the rest when the detection plane has judged them, so
// acks overtake each other and come out of message order; an ack names its
// seq, and an episode may send one seq twice. So no message is in flight
// beside another its ack could be taken for: a message is written only once
// every earlier message of its seq is answered, and bytes that are no Batch
// (their ack, if any, carries whatever seq they decode to) travel alone.
// Every ack then belongs to exactly one message.
//
// When a message is due: ANSWER_MS after its last byte left, not after the
// stream opened. Under load an 8 MiB message takes long to cross HTTP/2 flow
// control (windows of 64 KiB that the collector's event loop hands back one
// by one), and the messages behind it wait for it; that is the transport's
// pace, not a message left unanswered. A collector that stops reading a
// stream is still caught: a message's bytes must leave within ANSWER_MS plus
// its size at MIN_READ_BYTES_PER_S (one window a second).

export const ANSWER_MS = 30_000
export const MIN_READ_BYTES_PER_S = 64 * 1024

export type Answer =
  | { k: 'ack', ack: Ack }
  /** the stream ended with this (non-OK) status before an Ack came */
  | { k: 'status', code: grpc.status, details: string }
  /** nothing: the stream ended OK, or not at all in time */
  | { k: 'none', why: string }

export interface EpisodeAnswers {
  /** one per shipment, in order */
  answers: Answer[]
  /** acks that match no shipment */
  extra: Ack[]
  /** the slowest answer after its message's last byte left, and the slowest message to leave, in ms */
  slowest: { answerMs: number, writeMs: number }
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

  async send (ep: Episode, wires: readonly Buffer[], answerMs = ANSWER_MS): Promise<EpisodeAnswers> {
    const call = this.#client.makeBidiStreamRequest(SHIP.path, (b: Buffer) => b, SHIP.responseDeserialize) as grpc.ClientDuplexStream<Buffer, Ack>
    const n = wires.length
    const seq = (i: number): number | undefined => ep.shipments[i].seq
    const answers: Array<Answer | undefined> = new Array(n).fill(undefined)
    /** when each message was handed to the stream, and when its last byte left */
    const issued: number[] = []
    const left: Array<number | undefined> = []
    const extra: Ack[] = []
    const slowest = { answerMs: 0, writeMs: 0 }
    let next = 0
    let lastAnswer = Date.now()
    const open = (j: number): boolean => j < next && answers[j] === undefined
    const waits = (i: number): boolean => {
      for (let j = 0; j < i; j++) if (open(j) && (seq(i) === undefined || seq(j) === undefined || seq(j) === seq(i))) return true
      return false
    }
    /** when message i's bytes could start to leave: once it is handed over and the one before has left */
    const started = (i: number): number | undefined => i === 0 ? issued[0] : left[i - 1] !== undefined ? Math.max(issued[i], left[i - 1] as number) : undefined

    return await new Promise(resolve => {
      let status: grpc.StatusObject | undefined
      let done = false
      const finish = (why: string): void => {
        if (done) return
        done = true
        clearInterval(tick)
        resolve({
          answers: answers.map(a => a ?? (status !== undefined && status.code !== grpc.status.OK
            ? { k: 'status' as const, code: status.code, details: status.details }
            : { k: 'none' as const, why })),
          extra,
          slowest,
        })
      }
      const pump = (): void => {
        while (next < n && status === undefined && !waits(next)) {
          const i = next++
          issued[i] = Date.now()
          call.write(wires[i], () => {
            left[i] = Date.now()
            slowest.writeMs = Math.max(slowest.writeMs, left[i] as number - (started(i) ?? issued[i]))
          })
          if (next === n) call.end()
        }
      }
      call.on('data', (a: Ack) => {
        const s = Number(a.seq)
        let i = answers.findIndex((_, j) => open(j) && seq(j) !== undefined && seq(j) === s)
        if (i < 0) i = answers.findIndex((_, j) => open(j) && seq(j) === undefined)
        if (i < 0) { extra.push(a); return }
        answers[i] = { k: 'ack', ack: a }
        lastAnswer = Date.now()
        const l = left[i]
        if (l !== undefined) slowest.answerMs = Math.max(slowest.answerMs, lastAnswer - l)
        pump()
      })
      call.on('error', () => {}) // the 'status' event carries it
      call.on('status', (s: grpc.StatusObject) => { status = s; finish('the stream ended OK without it') })
      const giveUp = (why: string): void => { finish(why); call.cancel() }
      const tick = setInterval(() => {
        const now = Date.now()
        for (let i = 0; i < next; i++) {
          if (answers[i] !== undefined) continue
          const l = left[i]
          if (l !== undefined) {
            if (now - l > answerMs) { giveUp(`message ${i} had no answer ${answerMs} ms after its last byte left`); return }
            continue
          }
          const from = started(i)
          const allowed = answerMs + Math.ceil(wires[i].length / MIN_READ_BYTES_PER_S * 1000)
          if (from !== undefined && now - from > allowed) { giveUp(`the collector had not taken message ${i}'s ${wires[i].length} bytes ${allowed} ms after they could start to leave`); return }
        }
        // every message answered: the stream's end is not judged, only waited for a while
        if (next === n && answers.every(a => a !== undefined) && now - lastAnswer > answerMs) giveUp('the stream did not end')
      }, 250)
      pump()
    })
  }

  close (): void {
    this.#client.close()
  }
}
