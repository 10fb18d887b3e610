import * as grpc from '@grpc/grpc-js'
import { collectorService, type Ack, type Batch } from '../../../shared/proto/index.js'

// A loopback collector that acks every batch at once and counts what it got:
// the "local collector" of the capture and agent-pipeline benchmarks, so the
// agent is measured, not the detection backend.

export interface Sink {
  port: number
  address: string
  batches: number
  records: number
  bytes: number
  /** called for every batch as it arrives (benchmarks time arrivals) */
  onBatch: ((b: Batch) => void) | undefined
  close: () => Promise<void>
}

export async function startSink (port = 0): Promise<Sink> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 << 20 })
  const sink: Sink = { port: 0, address: '', batches: 0, records: 0, bytes: 0, onBatch: undefined, close: async () => {} }
  server.addService(collectorService(), {
    Ship: (call: grpc.ServerDuplexStream<Batch, Ack>) => {
      call.on('data', (b: Batch) => {
        sink.batches++
        sink.records += b.count
        sink.bytes += b.records.length + (b.context?.length ?? 0)
        sink.onBatch?.(b)
        call.write({ host_id: b.host_id, seq: b.seq, status: 'OK', instance: b.instance })
      })
      call.on('end', () => { call.end() })
      call.on('error', () => {})
    },
  })
  sink.port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => { if (err !== null) reject(err); else resolve(p) })
  })
  sink.address = `127.0.0.1:${sink.port}`
  sink.close = async () => { await new Promise<void>(resolve => { server.tryShutdown(() => { resolve() }) }); server.forceShutdown() }
  return sink
}
