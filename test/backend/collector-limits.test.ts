import * as grpc from '@grpc/grpc-js'
import t from 'tap'
import { join } from 'node:path'
import { packRecords, packValue, unpackValue } from '../../shared/codec.js'
import { createLogger } from '../../shared/logger.js'
import type { Ack, Batch } from '../../shared/proto/index.js'
import { startBackend, type BackendHandle } from '../../backend/server.js'
import { AgentStream, connectCollector } from '../../scripts/injector/index.js'
import { pack, probeRecord, tempDir } from './helpers/records.js'

// Each limit: a batch over it is refused with an Ack naming the limit, a gRPC
// code and what to do; the counter for that limit goes up; and the next valid
// batch on the same stream is accepted.

const LIMITS = { maxBatchBytes: 64 * 1024, maxRecords: 50, maxStringBytes: 256, maxDepth: 6 }
const tmp = tempDir('picket-limits-')
t.teardown(tmp.cleanup)

let backend: BackendHandle
let client: grpc.Client
t.before(async () => {
  backend = await startBackend({
    listen: '127.0.0.1:0',
    http: '127.0.0.1:0',
    db: join(tmp.dir, 'picket.db'),
    workers: 2,
    limits: LIMITS,
    console: false,
    logger: createLogger('test-limits', { level: 'fatal', pretty: false }),
  })
  client = connectCollector(backend.collector.address)
})
t.teardown(async () => {
  client?.close()
  await backend?.close()
})

const T = Date.now()
function records (host: string, n: number, from = 0): Buffer {
  return packRecords(Array.from({ length: n }, (_, i) => probeRecord(host, { t: T + i, src: '198.51.100.20', port: 1000 + from + i })))
}
function raw (host: string, seq: number, recs: Buffer, count: number, extra: Partial<Batch> = {}): Batch {
  return { host_id: host, seq, count, records: recs, hostname: host, agent_version: 'test', ...extra }
}
/** One lean record whose context is changed by `spoil`. */
function lean (host: string, seq: number, spoil: (ctx: Record<string, any>) => unknown): Batch {
  const b = pack([probeRecord(host, { t: T, src: '198.51.100.20', port: 1 })])
  return raw(host, seq, b.bytes, 1, { context: packValue(spoil(unpackValue(b.context) as Record<string, any>)) })
}

async function refusals (): Promise<Record<string, number>> {
  const text = await (await fetch(`${backend.http?.url ?? ''}/metrics`)).text()
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^picket_collector_refusals_total\{limit="([a-z_]+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2])
  return out
}

interface Case {
  limit: string
  code: grpc.status
  build: (host: string, seq: number) => Batch
}

const CASES: Case[] = [
  {
    limit: 'max_batch_bytes',
    code: grpc.status.RESOURCE_EXHAUSTED,
    // well over the limit, still under gRPC's own receive limit: our check must answer
    build: (host, seq) => raw(host, seq, Buffer.concat([records(host, 1), Buffer.alloc(LIMITS.maxBatchBytes + 10_000)]), 1),
  },
  {
    limit: 'max_batch_bytes',
    code: grpc.status.RESOURCE_EXHAUSTED,
    // small records, a context that makes the batch too big: the two count together
    build: (host, seq) => lean(host, seq, ctx => ({ ...ctx, pad: Buffer.alloc(LIMITS.maxBatchBytes) })),
  },
  {
    limit: 'max_records',
    code: grpc.status.RESOURCE_EXHAUSTED,
    build: (host, seq) => raw(host, seq, records(host, LIMITS.maxRecords + 1), LIMITS.maxRecords + 1),
  },
  {
    limit: 'max_string_bytes',
    code: grpc.status.INVALID_ARGUMENT,
    build: (host, seq) => lean(host, seq, ctx => ({ ...ctx, shapes: [[...ctx.shapes[0], 'x'.repeat(LIMITS.maxStringBytes + 1)]] })),
  },
  {
    limit: 'max_depth',
    code: grpc.status.INVALID_ARGUMENT,
    build: (host, seq) => lean(host, seq, ctx => ({ ...ctx, shared: { ...ctx.shared, unmapped: { a: { b: { c: { d: { e: { f: 1 } } } } } } } })),
  },
  {
    limit: 'max_records',
    code: grpc.status.RESOURCE_EXHAUSTED,
    // the count field lies; the worker counts the array itself
    build: (host, seq) => raw(host, seq, records(host, LIMITS.maxRecords + 5), 3),
  },
  {
    limit: 'max_string_bytes',
    code: grpc.status.INVALID_ARGUMENT,
    build: (host, seq) => {
      const r = probeRecord(host, { t: T, src: '198.51.100.20', port: 1 })
      r.status_detail = 'A'.repeat(LIMITS.maxStringBytes + 1)
      return raw(host, seq, packRecords([r]), 1)
    },
  },
  {
    limit: 'max_string_bytes',
    code: grpc.status.INVALID_ARGUMENT,
    build: (host, seq) => raw(host, seq, records(host, 1), 1, { hostname: 'h'.repeat(LIMITS.maxStringBytes + 1) }),
  },
  {
    limit: 'max_depth',
    code: grpc.status.INVALID_ARGUMENT,
    build: (host, seq) => {
      const r = probeRecord(host, { t: T, src: '198.51.100.20', port: 1 })
      r.unmapped = { a: { b: { c: { d: { e: { f: 1 } } } } } }
      return raw(host, seq, packRecords([r]), 1)
    },
  },
]

t.test('each limit: refused with a status naming it, the stream stays up, the next valid batch is accepted', async t => {
  let i = 0
  for (const c of CASES) {
    i++
    const host = `lim-${i}`
    const s = new AgentStream(client, host)
    const before = (await refusals())[c.limit] ?? 0
    const ok1 = await s.sendRaw(raw(host, 1, records(host, 5), 5))
    t.equal(ok1.status, 'OK', `${c.limit} #${i}: a valid batch first`)
    const bad: Ack = await s.sendRaw(c.build(host, 2))
    t.equal(bad.status, 'REFUSED', `${c.limit} #${i}: refused`)
    t.equal(bad.limit, c.limit, `${c.limit} #${i}: the ack names the limit`)
    t.equal(bad.code, c.code, `${c.limit} #${i}: gRPC code ${grpc.status[c.code]}`)
    t.equal(bad.error, 'PICKET_ERR_LIMIT')
    t.match(bad.message, new RegExp(c.limit), 'the message names the limit')
    t.match(bad.message, /send|raise|make/, 'and says what to do')
    t.equal(bad.seq, 2)
    const ok2 = await s.sendRaw(raw(host, 3, records(host, 5, 5), 5))
    t.equal(ok2.status, 'OK', `${c.limit} #${i}: the next valid batch on the same stream is accepted`)
    t.equal(s.stats.reconnects, 0, 'the stream never broke')
    await s.end()
    t.equal((await refusals())[c.limit], before + 1, `picket_collector_refusals_total{limit="${c.limit}"} went up by one`)
  }
})

t.test('identity and sequence checks refuse the batch, not the stream', async t => {
  const s = new AgentStream(client, 'id-a')
  t.equal((await s.sendRaw(raw('id-a', 1, records('id-a', 2), 2))).status, 'OK')
  const other = await s.sendRaw(raw('id-b', 1, records('id-b', 2), 2))
  t.match(other, { status: 'REFUSED', error: 'PICKET_ERR_HOST_ID', code: grpc.status.PERMISSION_DENIED, message: /belongs to host 'id-a'/ })
  const seq0 = await s.sendRaw(raw('id-a', 0, records('id-a', 2), 2))
  t.match(seq0, { status: 'REFUSED', error: 'PICKET_ERR_SEQ', code: grpc.status.INVALID_ARGUMENT })
  const foreign = await s.sendRaw(raw('id-a', 2, records('id-c', 2), 2))
  t.match(foreign, { status: 'REFUSED', error: 'PICKET_ERR_HOST_ID', code: grpc.status.PERMISSION_DENIED, limit: '', message: /device\.uid 'id-c'/ }, 'records claiming another host')
  const junk = await s.sendRaw(raw('id-a', 3, Buffer.from('not msgpack at all'), 1))
  t.match(junk, { status: 'REFUSED', error: 'PICKET_ERR_DECODE', code: grpc.status.INVALID_ARGUMENT })
  const noShape = await s.sendRaw(lean('id-a', 4, ctx => ({ shared: ctx.shared })))
  t.match(noShape, { status: 'REFUSED', error: 'PICKET_ERR_DECODE', code: grpc.status.INVALID_ARGUMENT, message: /^record 0 has shape 0, but the batch's context lists 0 shapes; send the shapes .*shared\/ocsf\/lean\.ts packLean/ }, 'a lean record whose shape the context does not list')
  const badPath = await s.sendRaw(lean('id-a', 5, ctx => ({ ...ctx, shapes: [['__proto__.x']] })))
  t.match(badPath, { status: 'REFUSED', error: 'PICKET_ERR_DECODE', message: /^context\.shapes\[0\]\[0\]: field path '__proto__\.x' names '__proto__'/ }, 'a shape path that reaches a prototype')
  const hostile = await s.sendRaw(lean('id-a', 6, ctx => ({ ...ctx, shared: { device: { uid: 'id-c' } } })))
  t.match(hostile, { status: 'REFUSED', error: 'PICKET_ERR_HOST_ID', message: /device\.uid 'id-c'/ }, 'a shared device of another host')
  t.equal((await s.sendRaw(raw('id-a', 7, records('id-a', 2), 2))).status, 'OK', 'still accepted afterwards')
  t.equal((await s.sendRaw(raw('id-a', 7, records('id-a', 2), 2))).status, 'DUPLICATE', 'a resent seq is a duplicate')
  await s.end()

  const anon = new AgentStream(client, '')
  const noHost = await anon.sendRaw(raw('', 1, records('x', 1), 1))
  t.match(noHost, { status: 'REFUSED', error: 'PICKET_ERR_HOST_ID', message: /no host_id/ })
  const weird = await anon.sendRaw(raw('bad host id\n', 1, records('x', 1), 1))
  t.match(weird, { status: 'REFUSED', error: 'PICKET_ERR_HOST_ID', message: /not valid/ })
  await anon.end()
  const r = await refusals()
  t.ok(r.host_id >= 4, 'host_id refusals counted')
  t.ok(r.seq >= 1, 'seq refusals counted')
  t.ok(r.decode >= 3, 'decode refusals counted')
  await backend.flush()
  const row = backend.store.getHost('id-a')
  t.equal(row?.refusedBatches, 6, 'the host row counts its refused batches (seq 0, foreign records, junk, two contexts that do not describe their records, a foreign shared device)')
  t.equal(row?.duplicateBatches, 1)
  t.equal(row?.records, 4, 'only accepted records count')
})
