import { move, transferableSymbol, valueSymbol, workerData } from 'piscina'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import type { NetworkActivity } from '../../shared/ocsf/types.js'
import { decodeNetRecords, type DecodeContext } from '../normalize/net.js'
import { MsgpackWriter } from '../normalize/pack.js'
import { packNetBatch } from '../normalize/pack-net.js'
import { crc32 } from '../crc32.js'
import type { DecodedBatch, DecodeOutput, DecoderWorkerData, DecodeTask } from '../protocol.js'

// A decoder worker (piscina): one task = one slab. Raw records → OCSF
// network_activity objects → one msgpack batch that decodes on its own,
// handed back by transfer. The slab is read in place from shared memory.

const data = workerData as DecoderWorkerData
const rings = new Map<string, Uint8Array>()
for (const [name, sab] of Object.entries(data.rings)) rings.set(name, new Uint8Array(sab))

const metadata = makeMetadata(data.source)
const device = makeDevice(data.source)
const writer = new MsgpackWriter(4 << 20)
writer.constants([metadata, device])
const out: NetworkActivity[] = []

/** The output buffer of the current task and how much of it is used. */
let outBuf: Uint8Array = new Uint8Array(0)
let outLen = 0

function emit (bytes: Uint8Array): number {
  if (outLen + bytes.length > outBuf.length) {
    // the recycled buffer is too small (or there is none): a bigger one, sized to fit
    const next = new Uint8Array(Math.max(outLen + bytes.length, outBuf.length * 2))
    next.set(outBuf.subarray(0, outLen))
    outBuf = next
  }
  const at = outLen
  outBuf.set(bytes, at)
  outLen += bytes.length
  return at
}

function pack (from: number, to: number, batches: DecodedBatch[]): boolean {
  const { bytes, generic } = packNetBatch(writer, out, from, to, true)
  if (bytes.length > data.maxBatchBytes && to - from > 1) {
    // over the collector's size limit: halve until each part fits
    const mid = from + Math.floor((to - from) / 2)
    const g1 = pack(from, mid, batches)
    const g2 = pack(mid, to, batches)
    return g1 || g2
  }
  const crc = crc32(bytes)
  batches.push({ offset: emit(bytes), length: bytes.length, count: to - from, crc })
  return generic
}

export default function decode (task: DecodeTask): unknown {
  if (task.records === 0) return { buffer: new ArrayBuffer(0), batches: [], records: 0, errors: 0, generic: false } satisfies DecodeOutput
  const buf = rings.get(task.ring)
  if (buf === undefined) throw new Error(`decoder: unknown ring '${task.ring}'`)
  const ctx: DecodeContext = {
    metadata,
    device,
    bootToWallNs: task.bootToWallNs,
    rstReasons: data.rstReasons,
    noSocketReason: data.noSocketReason,
    unmapped: data.unmapped,
  }
  out.length = 0
  const res = decodeNetRecords(buf, task.offset, task.bytes, ctx, out)
  const decoded = out.length
  const batches: DecodedBatch[] = []
  outBuf = task.out !== undefined ? new Uint8Array(task.out) : new Uint8Array(0)
  outLen = 0
  const generic = decoded > 0 ? pack(0, decoded, batches) : false
  out.length = 0
  // a right-sized copy when the output is small next to the buffer, so a
  // trickle of tiny batches does not pin multi-MiB buffers in the spool cache
  const buffer = (outLen * 4 < outBuf.length ? outBuf.slice(0, outLen).buffer : outBuf.buffer) as ArrayBuffer
  outBuf = new Uint8Array(0)
  // every raw record becomes one OCSF record or counts as a decode error
  // (malformed, an unknown family, or lost behind a broken frame)
  const output: DecodeOutput = { buffer, batches, records: decoded, errors: Math.max(0, task.records - decoded), generic }
  if (res.firstError !== undefined) output.firstError = res.firstError
  return move({
    get [transferableSymbol] () { return [buffer] },
    get [valueSymbol] () { return output },
  } as never)
}
