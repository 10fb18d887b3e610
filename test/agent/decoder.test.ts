import t from 'tap'
import { OutputArena } from '../../agent/arena.js'
import { DecoderPool } from '../../agent/decode-pool/pool.js'
import type { DecodeOutput } from '../../agent/protocol.js'
import { NET_EVENT } from '../../bpf/abi.js'
import { SYNTH_NO_SOCKET_REASON, SYNTH_RST_REASONS, synthIdOf, SynthSource } from '../../agent/source/synth.js'
import { expandSpans } from '../../agent/normalize/lean-batch.js'
import { unpackRecords, unpackValue } from '../../shared/codec.js'
import { crc32 } from '../../agent/crc32.js'
import { crashingDecoder } from '../helpers/agent.js'

// The decoder pool on its own: real piscina workers reading a shared slab in
// place and writing into the shared output arena. Malformed records are
// counted, oversized output is split, output that outgrows its region comes
// back in a buffer of its own, and a worker that dies has its task run again.

const arena = new OutputArena(4, 256 << 10)

/** The bytes a decode output's batches lie in. */
function bytesOf (out: DecodeOutput): Uint8Array {
  return out.region !== undefined ? arena.view(out.region) : new Uint8Array(out.buffer ?? new ArrayBuffer(0))
}

function pool (sab: SharedArrayBuffer, extra: Partial<ConstructorParameters<typeof DecoderPool>[0]['workerData']> = {}): DecoderPool {
  return new DecoderPool({
    threads: 1,
    workerData: {
      rings: { net: sab },
      arena: arena.shape,
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
  t.equal(out.region, undefined, 'a task given no region')
  t.ok(out.buffer !== undefined && out.buffer.byteLength > 0, 'comes back with a buffer of its own')
  t.equal(out.records, n - 2)
  t.equal(out.errors, 2, 'both bad records are errors, none vanishes')
  t.match(out.firstError, /kind 99/)
  t.equal(out.batches.length, 1)
  const b = out.batches[0]
  const bytes = bytesOf(out)
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
  const out = await p.decode({ ring: 'net', offset: 0, bytes: sab.byteLength, records: n, bootToWallNs: 0, region: 2 })
  t.equal(out.region, 2, 'written into the arena region it was given')
  t.equal(out.buffer, undefined, 'nothing transferred')
  t.ok(out.batches.length >= 8, `${out.batches.length} batches`)
  const bytes = bytesOf(out)
  for (const b of out.batches) {
    t.ok(b.length + b.contextLength <= 25_000, `batch of ${b.length} + ${b.contextLength} bytes of context fits`)
    t.equal(unpackRecords(bytes.subarray(b.offset, b.offset + b.length)).length, b.count)
  }
  const all = expandSpans(bytes, out.batches).map(r => synthIdOf(r))
  t.same(all, Array.from({ length: n }, (_, i) => i), 'in order, all there, each batch decoded with its own context')
})

t.test('output that outgrows its arena region comes back in a buffer of its own, whole', async t => {
  const n = 5000 // ~560 KB of lean records: more than a 256 KiB region
  const sab = new SharedArrayBuffer(n * NET_EVENT.SIZEOF)
  new SynthSource({ seed: 8 }).drain(sab, 0, sab.byteLength, 0)
  const p = pool(sab)
  t.teardown(() => p.close())
  const out = await p.decode({ ring: 'net', offset: 0, bytes: sab.byteLength, records: n, bootToWallNs: 0, region: 1 })
  t.equal(out.region, undefined, 'not in the region')
  t.ok((out.buffer?.byteLength ?? 0) > 256 << 10, 'a buffer of its own')
  t.same(expandSpans(bytesOf(out), out.batches).map(r => synthIdOf(r)), Array.from({ length: n }, (_, i) => i))
})

t.test('a worker that exits mid-task: the task runs again on a fresh worker, into the same arena region', async t => {
  const n = 300
  const sab = new SharedArrayBuffer(n * NET_EVENT.SIZEOF)
  new SynthSource({ seed: 7 }).drain(sab, 0, sab.byteLength, 0)
  const retries: number[] = []
  const p = new DecoderPool({
    threads: 1,
    worker: crashingDecoder(1),
    onRetry: (_err, attempt) => retries.push(attempt),
    workerData: {
      rings: { net: sab }, arena: arena.shape, source: { hostId: 'h', hostname: 'h', agentVersion: '0' }, rstReasons: SYNTH_RST_REASONS, noSocketReason: SYNTH_NO_SOCKET_REASON,
      maxBatchBytes: 3 << 20, unmapped: true,
    },
  })
  t.teardown(() => p.close())
  const out = await p.decode({ ring: 'net', offset: 0, bytes: sab.byteLength, records: n, bootToWallNs: 0, region: 3 })
  t.same(retries, [1], 'retried once')
  t.equal(out.region, 3, 'the retry wrote into the same region')
  t.same(expandSpans(bytesOf(out), out.batches).map(r => synthIdOf(r)), Array.from({ length: n }, (_, i) => i), 'whole')
  t.equal(out.records, n)
  t.equal(p.stats().retries, 1)
})
