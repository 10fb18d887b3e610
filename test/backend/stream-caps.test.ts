import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import { join } from 'node:path'
import { packRecords } from '../../shared/codec.js'
import { createLogger } from '../../shared/logger.js'
import { collectorClientCtor, type Ack, type Batch } from '../../shared/proto/index.js'
import { startBackend, type BackendHandle } from '../../backend/server.js'
import { connectCollector } from '../../scripts/injector/index.js'
import { tempDir } from './helpers/records.js'

// Defect 7's other half: nothing capped the streams a collector would hold
// open. Now Ship streams are capped in total and by connection (grpc-js has
// no connection cap: the collector counts streams per peer), a stream over a
// cap is refused RESOURCE_EXHAUSTED with a message naming the cap and the
// flag that raises it, and each refusal is counted; the streams already open
// are untouched. HTTP/2's own per-connection cap makes a client wait.

const tmp = tempDir('picket-stream-caps-')
t.teardown(tmp.cleanup)

async function backendWith (streams: { maxStreams?: number, maxConnections?: number, maxStreamsPerConnection?: number }, name: string): Promise<BackendHandle> {
  return await startBackend({
    listen: '127.0.0.1:0',
    http: '127.0.0.1:0',
    console: false,
    db: join(tmp.dir, `${name}.db`),
    workers: 1,
    streams,
    logger: createLogger('test-stream-caps', { level: 'fatal', pretty: false }),
  })
}

type Call = grpc.ClientDuplexStream<Batch, Ack>

/** A client on a connection of its own: grpc-js shares one connection between clients of the same address unless told not to. */
function ownConnection (address: string): grpc.Client {
  const Ctor = collectorClientCtor()
  return new Ctor(address, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 })
}

/** A Ship stream that has sent one empty batch: its ack, or the status it ended with. */
function open (client: grpc.Client, host: string): { call: Call, first: Promise<Ack | grpc.ServiceError> } {
  const call = (client as unknown as { Ship: () => Call }).Ship()
  const first = new Promise<Ack | grpc.ServiceError>(resolve => {
    call.once('data', resolve)
    call.once('error', resolve)
  })
  call.write({ host_id: host, seq: 1, count: 0, records: packRecords([]), hostname: host, agent_version: 'test' })
  return { call, first }
}

async function refusals (b: BackendHandle): Promise<Record<string, number>> {
  const text = await (await fetch(`${b.http?.url ?? ''}/metrics`)).text()
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^picket_collector_stream_refusals_total\{reason="([a-z_]+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2])
  return out
}

t.test('streams over --max-streams or --max-connections are refused, named and counted', async t => {
  const b = await backendWith({ maxStreams: 3, maxConnections: 2 }, 'caps')
  t.teardown(async () => { await b.close() })
  const [a, c, d] = [0, 1, 2].map(() => ownConnection(b.collector.address))
  t.teardown(() => { a.close(); c.close(); d.close() })

  const a1 = open(a, 'cap-a1')
  const a2 = open(a, 'cap-a2')
  const c1 = open(c, 'cap-c1')
  for (const s of [a1, a2, c1]) t.match(await s.first, { status: 'OK' }, 'within the caps')

  const c2 = open(c, 'cap-c2')
  const over = await c2.first as grpc.ServiceError
  t.equal(over.code, grpc.status.RESOURCE_EXHAUSTED, 'a fourth stream is over max_streams 3')
  t.match(over.details, /max_streams 3.*--max-streams/, 'the message names the cap and the flag')

  a2.call.end()
  for (let i = 0; i < 100 && (await b.health()).collector.streams > 2; i++) await new Promise(resolve => setTimeout(resolve, 50))
  const d1 = open(d, 'cap-d1')
  const third = await d1.first as grpc.ServiceError
  t.equal(third.code, grpc.status.RESOURCE_EXHAUSTED, 'a stream on a third connection is over max_connections 2')
  t.match(third.details, /max_connections 2.*--max-connections/)

  const a3 = open(a, 'cap-a3')
  t.match(await a3.first, { status: 'OK' }, 'a stream on a connection already counted still fits')
  t.same(await refusals(b), { max_streams: 1, max_connections: 1, max_message_bytes: 0 }, 'each refusal counted by its cap')
  for (const s of [a1, c1, a3]) s.call.end()
})

t.test('--max-streams-per-connection: a client waits for a free stream instead of opening more', async t => {
  const b = await backendWith({ maxStreamsPerConnection: 1 }, 'per-connection')
  t.teardown(async () => { await b.close() })
  const client = connectCollector(b.collector.address)
  t.teardown(() => client.close())
  const first = open(client, 'pc-1')
  t.match(await first.first, { status: 'OK' })
  const second = open(client, 'pc-2')
  const early = await Promise.race([second.first, new Promise(resolve => setTimeout(() => resolve('waiting'), 500))])
  t.equal(early, 'waiting', 'the second stream is held back by HTTP/2 while the first is open')
  first.call.end()
  t.match(await second.first, { status: 'OK' }, 'and goes through once the first ends')
  second.call.end()
})
