import t from 'tap'
import { DecoderPool } from '../../agent/decode-pool/pool.js'
import { NET_EVENT } from '../../bpf/abi.js'
import { SYNTH_NO_SOCKET_REASON, SYNTH_RST_REASONS, synthIdOf, SynthSource } from '../../agent/source/synth.js'
import { expandSpans } from '../../agent/normalize/lean-batch.js'
import { unpackRecords, unpackValue } from '../../shared/codec.js'
import { crc32 } from '../../agent/crc32.js'
import { crashingDecoder } from '../helpers/agent.js'

// The decoder pool on its own: real piscina workers reading a shared slab in
// place. Malformed records are counted, oversized output is split, the output
// buffer is recycled, and a worker that dies has its task run again.

function pool (sab: SharedArrayBuffer, extra: Partial<ConstructorParameters<typeof DecoderPool>[0]['workerData']> = {}): DecoderPool {
  return new DecoderPool({
    threads: 1,
    workerData: {
      rings: { net: sab },
      source: { hostId: 'dec-host', hostname: 'dec.example', agentVersion: '0.0.0' },
      rstReasons: SYNTH_RST_REASONS,
      noSocketReason: SYNTH_NO_SOCKET_REASON,
      maxBatchBytes: 3 << 20,
      unmapped: true,
      ...extra,
    },
  })
}

t.test('malformed records count as decode errors; the rest decode', async t => {
  const n = 500
  const sab = new SharedArrayBuffer(n * NET_EVENT.SIZEOF)
  new SynthSource({ seed: 5 }).drain(sab, 0, sab.byteLength, 0)
  const dv = new DataView(sab)
  dv.setUint16(10 * NET_EVENT.SIZEOF, 99, true) // record 10: a kind no ring carries
  dv.setUint16(20 * NET_EVENT.SIZEOF + NET_EVENT.family, 7, true) // record 20: an unknown address family
  const p = pool(sab)
  t.teardown(() => p.close())
  await p.ready(30_000)
  const out = await p.decode({ ring: 'net', offset: 0, bytes: sab.byteLength, records: n, bootToWallNs: 0 })
  t.equal(out.records, n - 2)
  t.equal(out.errors, 2, 'both bad records are errors, none vanishes')
  t.match(out.firstError, /kind 99/)
  t.equal(out.batches.length, 1)
  const b = out.batches[0]
  const bytes = new Uint8Array(out.buffer)
  const context = bytes.subarray(b.contextOffset, b.contextOffset + b.contextLength)
  t.equal(b.crc, crc32(bytes.subarray(b.offset, b.offset + b.length), crc32(context)), 'the worker checksums its batch: the context, then the records')
  t.match(unpackValue(context), { shared: { device: { uid: 'dec-host' } }, shapes: Array }, 'the batch carries its context')
  const ids = expandSpans(bytes, out.batches).map(r => synthIdOf(r))
  t.same(ids, Array.from({ length: n }, (_, i) => i).filter(i => i !== 10 && i !== 20))
})

t.test('a slab whose output is over maxBatchBytes is split into batches that each fit and decode alone', async t => {
  const n = 2000
  const sab = new SharedArrayBuffer(n * NET_EVENT.SIZEOF)
  new SynthSource({ seed: 6 }).drain(sab, 0, sab.byteLength, 0)
  const p = pool(sab, { maxBatchBytes: 25_000 })
  t.teardown(() => p.close())
  const recycled = new ArrayBuffer(512 << 10)
  const out = await p.decode({ ring: 'net', offset: 0, bytes: sab.byteLength, records: n, bootToWallNs: 0, out: recycled })
  t.equal(recycled.byteLength, 0, 'the recycled buffer was handed to the worker')
  t.equal(out.buffer.byteLength, 512 << 10, 'and it came back holding the output')
  t.ok(out.batches.length >= 8, `${out.batches.length} batches`)
  for (const b of out.batches) {
    t.ok(b.length + b.contextLength <= 25_000, `batch of ${b.length} + ${b.contextLength} bytes of context fits`)
    t.equal(unpackRecords(new Uint8Array(out.buffer, b.offset, b.length)).length, b.count)
  }
  const all = expandSpans(new Uint8Array(out.buffer), out.batches).map(r => synthIdOf(r))
  t.same(all, Array.from({ length: n }, (_, i) => i), 'in order, all there, each batch decoded with its own context')
})

t.test('a worker that exits mid-task: the task runs again on a fresh worker; the recycled buffer is not reused', async t => {
  const n = 300
  const sab = new SharedArrayBuffer(n * NET_EVENT.SIZEOF)
  new SynthSource({ seed: 7 }).drain(sab, 0, sab.byteLength, 0)
  const retries: number[] = []
  const p = new DecoderPool({
    threads: 1,
    worker: crashingDecoder(1),
    onRetry: (_err, attempt) => retries.push(attempt),
    workerData: {
      rings: { net: sab }, source: { hostId: 'h', hostname: 'h', agentVersion: '0' }, rstReasons: SYNTH_RST_REASONS, noSocketReason: SYNTH_NO_SOCKET_REASON,
      maxBatchBytes: 3 << 20, unmapped: true,
    },
  })
  t.teardown(() => p.close())
  const out = await p.decode({ ring: 'net', offset: 0, bytes: sab.byteLength, records: n, bootToWallNs: 0, out: new ArrayBuffer(1 << 20) })
  t.same(retries, [1], 'retried once')
  t.equal(out.records, n)
  t.equal(p.stats().retries, 1)
})
