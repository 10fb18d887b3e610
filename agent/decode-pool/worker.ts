import { move, transferableSymbol, valueSymbol, workerData } from 'piscina'
import { makeDevice, makeMetadata } from '../../shared/ocsf/network.js'
import { LeanBatcher, type LeanSpan } from '../normalize/lean-batch.js'
import { MsgpackWriter } from '../normalize/pack.js'
import type { DecodeEnv } from '../normalize/types.js'
import { HEADER } from '../../bpf/abi.js'
import { crc32 } from '../crc32.js'
import { ProcTableReader } from '../proctable/table.js'
import { NameCache } from '../normalize/dns-names.js'
import type { DecodedBatch, DecodeOutput, DecoderWorkerData, DecodeTask } from '../protocol.js'

// A decoder worker (piscina): one task = one slab. Raw records → lean OCSF
// batches (agent/normalize), each its records and its context, written
// straight into the task's region of the shared output arena (agent/arena.ts):
// only offsets go back. The slab is read in place from shared memory. A task
// without a region, or whose output outgrew it, writes into memory of its
// own and hands it back by transfer.

const data = workerData as DecoderWorkerData
const rings = new Map<string, Uint8Array>()
for (const [name, sab] of Object.entries(data.rings)) rings.set(name, new Uint8Array(sab))

const procs = data.procTable !== undefined ? new ProcTableReader(data.procTable) : undefined
const names = data.names !== undefined ? new NameCache(data.names) : undefined
const batcher = new LeanBatcher({ metadata: makeMetadata(data.source), device: makeDevice(data.source) })
const regions: Uint8Array[] = []
for (let i = 0; (i + 1) * data.arena.regionBytes <= data.arena.data.byteLength; i++) regions.push(new Uint8Array(data.arena.data, i * data.arena.regionBytes, data.arena.regionBytes))
/** where a task without a region is written, then copied out at its size */
let scratch: Uint8Array = new Uint8Array(1 << 20)
const writer = new MsgpackWriter(0)
const spans: LeanSpan[] = []

/** how long a decoder waits for the process table to catch up with its slab */
const MAX_WAIT_MS = 25

/** The boot time of the last record in [off, off + len) of buf. */
function lastBootNs (buf: Uint8Array, off: number, len: number): number {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  let p = off
  let last = -1
  while (p + HEADER.SIZEOF <= off + len) {
    const size = dv.getUint16(p + HEADER.size, true)
    if (size < HEADER.SIZEOF) break
    last = p
    p += size
  }
  return last < 0 ? 0 : dv.getUint32(last + HEADER.boot_ns + 4, true) * 4294967296 + dv.getUint32(last + HEADER.boot_ns, true)
}

export default function decode (task: DecodeTask): unknown {
  if (task.records === 0) return { batches: [], records: 0, errors: 0 } satisfies DecodeOutput
  const buf = rings.get(task.ring)
  if (buf === undefined) throw new Error(`decoder: unknown ring '${task.ring}'`)
  const env: DecodeEnv = {
    bootToWallNs: task.bootToWallNs,
    rstReasons: data.rstReasons,
    noSocketReason: data.noSocketReason,
    unmapped: data.unmapped,
  }
  if (names !== undefined) env.names = names
  if (procs !== undefined) {
    env.procs = procs
    // a record of another ring names a process: let the process ring's
    // consumer apply what came before it first (bounded: a starved process
    // ring must not stall the others)
    if (task.ring !== data.procRing) procs.waitApplied(lastBootNs(buf, task.offset, task.bytes), MAX_WAIT_MS)
  }
  const given = task.region !== undefined ? regions[task.region] : undefined
  if (task.region !== undefined && given === undefined) throw new Error(`decoder: no arena region ${task.region}`)
  writer.use(given ?? scratch)
  spans.length = 0
  const res = batcher.encode(writer, buf, task.offset, task.bytes, env, data.maxBatchBytes, spans)
  const bytes = writer.buffer
  const length = writer.length
  if (given === undefined) scratch = bytes
  const batches: DecodedBatch[] = spans.map(s => ({
    ...s,
    // the spool frame's payload is the context, then the records
    crc: crc32(bytes.subarray(s.offset, s.offset + s.length), crc32(bytes.subarray(s.contextOffset, s.contextOffset + s.contextLength))),
  }))
  writer.use(scratch)
  // every raw record becomes one OCSF record or counts as a decode error
  // (malformed, an unknown family, or lost behind a broken frame), or was
  // read on purpose without one (a fork: it only updates the process table)
  const output: DecodeOutput = { batches, records: res.written, errors: Math.max(0, task.records - res.written - res.skipped) }
  if (res.firstError !== undefined) output.firstError = res.firstError
  if (res.skipped > 0) output.skipped = res.skipped
  if (bytes === given) {
    output.region = task.region
    return output
  }
  // memory of its own: a right-sized copy when the output is small next to
  // it, so a trickle of tiny batches does not pin big buffers in the spool cache
  const buffer = (bytes === scratch || length * 4 < bytes.length ? bytes.slice(0, length).buffer : bytes.buffer) as ArrayBuffer
  output.buffer = buffer
  return move({
    get [transferableSymbol] () { return [buffer] },
    get [valueSymbol] () { return output },
  } as never)
}
