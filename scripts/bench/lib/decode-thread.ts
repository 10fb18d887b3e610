import { parentPort, workerData } from 'node:worker_threads'
import { LeanBatcher, type LeanSpan } from '../../../agent/normalize/lean-batch.js'
import { MsgpackWriter } from '../../../agent/normalize/pack.js'
import { crc32 } from '../../../agent/crc32.js'
import { packRecords } from '../../../shared/codec.js'
import { median } from './report.js'
import { decodedSlabs, rawFixture } from './netfixture.js'

// The decode benchmark's single-thread variants, in a worker thread that
// decode.ts starts with the decoder pool's own resourceLimits, so the
// decoder path and its peer run with the heap the real decoder has.
// Protocol: { name } in, { seconds } out; { batchBytes, medianBytes, slabs } on start.

const port = parentPort
if (port === null) throw new Error('decode-thread.ts must run as a worker thread')
const { records } = workerData as { records: number }
const f = rawFixture(records)
// ready-made objects for a few slabs only, used in turn: a whole run's worth
// kept alive would load every garbage collection of the thread with it
const KEEP = 8
const objects = decodedSlabs({ ...f, slabs: f.slabs.slice(0, KEEP) })
const batcher = new LeanBatcher(f.shared)
// as agent/decode-pool/worker.ts does per task: write the batches into the
// task's (recycled) output buffer, then CRC each batch's context and records
const out = new Uint8Array(4 << 20)
const writer = new MsgpackWriter(0)
const spans: LeanSpan[] = []
function decodeSlab (i: number): void {
  const s = f.slabs[i]
  writer.use(out)
  spans.length = 0
  batcher.encode(writer, f.buf, s.offset, s.bytes, f.env, 3 << 20, spans)
  const b = writer.buffer
  for (const x of spans) crc32(b.subarray(x.offset, x.offset + x.length), crc32(b.subarray(x.contextOffset, x.contextOffset + x.contextLength)))
}

// bytes on the wire per record, batch by batch: the records and their context
let batchBytes = 0
const perRecord: number[] = []
for (let i = 0; i < f.slabs.length; i++) {
  decodeSlab(i)
  for (const x of spans) {
    batchBytes += x.length + x.contextLength
    perRecord.push((x.length + x.contextLength) / x.count)
  }
}

const VARIANTS: Record<string, (i: number) => void> = {
  picket: decodeSlab,
  msgpackr: i => { packRecords(objects[i % objects.length]) },
}

port.on('message', (m: { name: string }) => {
  const each = VARIANTS[m.name]
  const t0 = performance.now()
  for (let i = 0; i < f.slabs.length; i++) each(i)
  port.postMessage({ seconds: (performance.now() - t0) / 1000 })
})
port.postMessage({ batchBytes, medianBytes: median(perRecord), fullBytes: packRecords(objects[0]).length / objects[0].length, slabs: f.slabs.length, slabBytes: f.slabBytes })
