import t from 'tap'
import { encodeBatch } from '../../agent/ship/encode.js'
import { InFlight } from '../../agent/ship/inflight.js'
import { collectorService, type Batch } from '../../shared/proto/index.js'

// The shipper encodes Batch by hand (one copy of the records, done at send
// time); the .proto's own codec must read back exactly what was meant.

const decode = (b: Buffer): Batch => collectorService().Ship.requestDeserialize(b) as Batch
const encodeWithProto = (b: Batch): Buffer => collectorService().Ship.requestSerialize(b)

t.test('encodeBatch reads back through the .proto codec, field for field', async t => {
  const records = Buffer.alloc(300_000, 0xab)
  const full: Batch = {
    host_id: 'host-ü-1', seq: 2 ** 40 + 7, count: 2520, records,
    drops: { kernel_reserve: 1, kernel_recursion: 2 ** 33, slab_starvation: 127, spool_eviction: 128, decode_error: 16384, refused: 0 },
    hostname: 'h.example', sent_at_ms: 1_795_000_000_123, agent_version: '0.1.0', captured_total: 2 ** 52, instance: '0f1e2d3c4b5a69788796a5b4c3d2e1f0',
  }
  const got = decode(encodeBatch(full))
  t.same({ ...got, records: undefined, context: undefined }, { ...full, records: undefined })
  t.ok(Buffer.compare(got.records, records) === 0, 'records intact')
  t.ok(encodeBatch(full).length <= encodeWithProto(full).length, 'no bigger than protobufjs writes it (zero fields are left out, as proto3 allows)')
  // field 11: the lean batch's context
  const context = Buffer.from([0x82, 0xa6, 0x73, 0x68, 0x61, 0x72, 0x65, 0x64, 0x80, 0xa6, 0x73, 0x68, 0x61, 0x70, 0x65, 0x73, 0x90])
  const lean: Batch = { ...full, context }
  const back = decode(encodeBatch(lean))
  t.ok(Buffer.compare(back.context ?? Buffer.alloc(0), context) === 0, 'context (field 11) reads back through the .proto codec')
  t.same({ ...back, records: undefined, context: undefined }, { ...full, records: undefined })
  t.same(decode(encodeWithProto(lean)), back, 'reads back as protobufjs\'s own encoding of it does')
  t.ok(encodeBatch(lean).length <= encodeWithProto(lean).length)
  t.equal(decode(encodeBatch(full)).context?.length ?? 0, 0, 'no context: the field is left out (the full form)')
  const big = Buffer.alloc(70_000, 0x5a)
  t.ok(Buffer.compare(decode(encodeBatch({ ...full, context: big })).context ?? Buffer.alloc(0), big) === 0, 'a context longer than a one-byte varint length')
  const zeros: Batch = { host_id: 'h', seq: 1, count: 0, records: Buffer.alloc(0), drops: { kernel_reserve: 0, kernel_recursion: 0, slab_starvation: 0, spool_eviction: 0, decode_error: 0, refused: 0 } }
  const z = decode(encodeBatch(zeros))
  t.same(z.drops, zeros.drops, 'an all-zero drops message is still present')
  t.equal(z.count, 0)
  t.same(decode(encodeWithProto(zeros)), z, 'reads back as protobufjs\'s own encoding does')
})

t.test('encode memory is lent per batch in flight and reused only once its batch is acked or its stream is gone', async t => {
  const f = new InFlight()
  const a = f.encodeBuffer(100_000)
  t.ok(a.length >= 100_000)
  f.add(1, { sentAt: 0, count: 1, bytes: 1, encoded: a })
  const b = f.encodeBuffer(100_000)
  t.not(b.buffer, a.buffer, 'a batch in flight keeps its memory')
  f.add(2, { sentAt: 0, count: 1, bytes: 1, encoded: b })
  f.take(1)
  t.equal(f.encodeBuffer(50_000).buffer, a.buffer, 'an acked batch\'s memory is lent again')
  f.clear()
  t.equal(f.encodeBuffer(100_000).buffer, b.buffer, 'so is the memory of batches whose stream is gone')
  t.not(f.encodeBuffer(10 << 20).buffer, a.buffer, 'too small: a new buffer')
  const msg = encodeBatch({ host_id: 'h', seq: 3, count: 1, records: Buffer.from([0x91, 0x01]) }, undefined, size => Buffer.alloc(size + 500, 0xee))
  t.same(decode(msg).records, Buffer.from([0x91, 0x01]), 'encoded at the start of lent memory bigger than the message')
})
