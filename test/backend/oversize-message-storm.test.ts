import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import type { Ack, Batch } from '../../shared/proto/index.js'
import { connectCollector } from '../../scripts/injector/index.js'
import { startBackendProc, type BackendProc } from '../../scripts/bench/lib/backend.js'
import { mib, rssOf } from './helpers/rss.js'

// Defect 7: forty streams that each send a 16 MiB message at a collector with
// the default max_batch_bytes (8 MiB) left the backend at 819 MB of RSS, 90 s
// later: gRPC's receive limit was 2 × max_batch_bytes + 1 MiB, so every
// message was buffered whole before our own check refused it. Now the
// receive limit follows max_batch_bytes and grpc-js ends each stream from
// the message's length prefix. The backend runs in its own process, so the
// RSS read here is its own.

const STREAMS = 40
const MESSAGE = 16 * 1024 * 1024
/** how far above its idle level the backend's RSS may be once the storm is over */
const RSS_MARGIN = 64 * 1024 * 1024
/** and how soon it must be back there */
const SETTLE_MS = 15_000

function metric (text: string, name: string, labels: string): number {
  const m = new RegExp(`^${name}\\{${labels}\\} (\\d+)$`, 'm').exec(text)
  return m === null ? 0 : Number(m[1])
}


/** One stream, one message: how it ended, and when. */
async function storm (address: string, i: number, records: Buffer): Promise<{ code: grpc.status | 'ack', ms: number }> {
  const client = connectCollector(address)
  const t0 = Date.now()
  try {
    return await new Promise(resolve => {
      const call = (client as unknown as { Ship: () => grpc.ClientDuplexStream<Batch, Ack> }).Ship()
      call.on('data', () => { resolve({ code: 'ack', ms: Date.now() - t0 }); call.cancel() })
      call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, ms: Date.now() - t0 }))
      call.on('end', () => resolve({ code: grpc.status.OK, ms: Date.now() - t0 }))
      call.write({ host_id: `storm-${i}`, seq: 1, count: 1, records, hostname: `storm-${i}`, agent_version: 'test' })
    })
  } finally {
    client.close()
  }
}

let backend: BackendProc
t.before(async () => { backend = await startBackendProc({ workers: 2 }) })
t.teardown(async () => { await backend?.stop() })

t.test('forty 16 MiB messages: each stream refused at once and counted, RSS back near idle', async t => {
  await new Promise(resolve => setTimeout(resolve, 1000))
  const idle = rssOf(backend.pid)
  const records = Buffer.alloc(MESSAGE, 0x61)
  const t0 = Date.now()
  const ends = await Promise.all(Array.from({ length: STREAMS }, async (_, i) => await storm(backend.address, i, records)))
  const stormMs = Date.now() - t0
  t.equal(ends.filter(e => e.code === grpc.status.RESOURCE_EXHAUSTED).length, STREAMS, `every stream ended RESOURCE_EXHAUSTED (${JSON.stringify([...new Set(ends.map(e => e.code))])})`)
  t.ok(stormMs < 30_000, `the storm was over in ${stormMs} ms (per stream: ${ends.map(e => e.ms).sort((a, b) => a - b).join(",")})`)

  const text = await backend.metrics()
  t.equal(metric(text, 'picket_collector_stream_refusals_total', 'reason="max_message_bytes"'), STREAMS, 'each counted once in picket_collector_stream_refusals_total{reason="max_message_bytes"}')
  t.equal(metric(text, 'picket_collector_batches_total', 'status="OK"'), 0, 'nothing reached the detection plane')

  let rss = rssOf(backend.pid)
  const deadline = Date.now() + SETTLE_MS
  while (rss > idle + RSS_MARGIN && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 250))
    rss = rssOf(backend.pid)
  }
  t.ok(rss <= idle + RSS_MARGIN, `backend RSS ${mib(rss)} within ${mib(RSS_MARGIN)} of its idle ${mib(idle)} within ${SETTLE_MS / 1000} s of the storm`)
  t.ok(/Received message larger than max/.test(backend.stderr()), 'and logged, with grpc-js\' own words')
})

t.test('a batch just under max_batch_bytes still gets its Ack', async t => {
  const client = connectCollector(backend.address)
  t.teardown(() => client.close())
  const ack = await new Promise<Ack>((resolve, reject) => {
    const call = (client as unknown as { Ship: () => grpc.ClientDuplexStream<Batch, Ack> }).Ship()
    call.on('data', (a: Ack) => { resolve(a); call.end() })
    call.on('error', reject)
    call.write({ host_id: 'near-limit', seq: 1, count: 1, records: Buffer.alloc(8 * 1024 * 1024 - 16, 0x61), hostname: 'near-limit', agent_version: 'test' })
  })
  t.equal(ack.status, 'REFUSED', 'the bytes are no batch of records, and the collector says so in an Ack')
  t.not(ack.limit, 'max_batch_bytes', 'not for its size')
})
