import { isDeepStrictEqual } from 'node:util'
import { parentPort, workerData } from 'node:worker_threads'
import { decodeNetRecords } from '../../../agent/normalize/net.js'
import { MsgpackWriter } from '../../../agent/normalize/pack.js'
import { packNetBatch } from '../../../agent/normalize/pack-net.js'
import { crc32 } from '../../../agent/crc32.js'
import { packRecords, unpackRecords } from '../../../shared/codec.js'
import type { NetworkActivity } from '../../../shared/ocsf/types.js'
import { decodedSlabs, rawFixture } from './netfixture.js'

// The decode benchmark's single-thread variants, in a worker thread that
// decode.ts starts with the decoder pool's own resourceLimits, so the
// decoder path and its peer run with the heap the real decoder has.
// Protocol: { name } in, { seconds } out; { batchBytes, slabs } on start.

const port = parentPort
if (port === null) throw new Error('decode-thread.ts must run as a worker thread')
const { records } = workerData as { records: number }
const f = rawFixture(records)
// ready-made objects for a few slabs only, used in turn: a whole run's worth
// kept alive would load every garbage collection of the thread with it
const KEEP = 8
const objects = decodedSlabs({ ...f, slabs: f.slabs.slice(0, KEEP) })
const writer = new MsgpackWriter(4 << 20)
writer.constants([f.ctx.metadata, f.ctx.device])
const scratch: NetworkActivity[] = []
// as agent/decode-pool/worker.ts does per task: pack in place, CRC the batch, copy it into the (recycled) output buffer
let outBuf = new Uint8Array(4 << 20)
const emit = (bytes: Uint8Array): void => {
  if (bytes.length > outBuf.length) outBuf = new Uint8Array(bytes.length * 2)
  crc32(bytes)
  outBuf.set(bytes, 0)
}

// the comparison is only fair if both encoders write the same values
if (!isDeepStrictEqual(unpackRecords(packNetBatch(writer, objects[0]).bytes), unpackRecords(packRecords(objects[0])))) {
  throw new Error('packNetBatch and msgpackr disagree on the same records: the comparison would be meaningless')
}
let batchBytes = 0
for (const s of f.slabs) {
  scratch.length = 0
  decodeNetRecords(f.buf, s.offset, s.bytes, f.ctx, scratch)
  batchBytes += packNetBatch(writer, scratch).bytes.length
}
scratch.length = 0

const VARIANTS: Record<string, (i: number) => void> = {
  picket: i => {
    const s = f.slabs[i]
    scratch.length = 0
    decodeNetRecords(f.buf, s.offset, s.bytes, f.ctx, scratch)
    emit(packNetBatch(writer, scratch, 0, scratch.length, true).bytes)
  },
  decodeOnly: i => { const s = f.slabs[i]; scratch.length = 0; decodeNetRecords(f.buf, s.offset, s.bytes, f.ctx, scratch) },
  packOnly: i => { const o = objects[i % objects.length]; packNetBatch(writer, o, 0, o.length, true) },
  msgpackr: i => { packRecords(objects[i % objects.length]) },
}

port.on('message', (m: { name: string }) => {
  const each = VARIANTS[m.name]
  const t0 = performance.now()
  for (let i = 0; i < f.slabs.length; i++) each(i)
  port.postMessage({ seconds: (performance.now() - t0) / 1000 })
})
port.postMessage({ batchBytes, slabs: f.slabs.length, slabBytes: f.slabBytes })
