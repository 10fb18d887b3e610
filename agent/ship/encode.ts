import { DROP_CAUSES } from '../../shared/enums.js'
import type { Batch, DropCounters } from '../../shared/proto/index.js'

// The Batch message of shared/proto/collector.proto, encoded by hand: one
// allocation and one copy of the records and context, done synchronously
// when the shipper sends, so their memory can be reused as soon as the batch
// leaves the spool cache (grpc-js may serialize a queued message later).
// test/agent/encode.test.ts checks it against the .proto's own codec.

function varintLen (n: number): number {
  let len = 1
  while (n >= 128) { n = Math.floor(n / 128); len++ }
  return len
}

function writeVarint (buf: Buffer, p: number, n: number): number {
  while (n >= 128) {
    buf[p++] = (n % 128) | 0x80
    n = Math.floor(n / 128)
  }
  buf[p++] = n
  return p
}

// field numbers 1.. follow DROP_CAUSES' order, as in collector.proto (test/shared/enums.test.ts)
const DROP_FIELDS: ReadonlyArray<keyof DropCounters> = DROP_CAUSES

function dropsLen (d: Partial<DropCounters>): number {
  let n = 0
  for (const f of DROP_FIELDS) {
    const v = d[f] ?? 0
    if (v !== 0) n += 1 + varintLen(v)
  }
  return n
}

const EMPTY = new Uint8Array(0)

/** The pre-encoded strings of a shipper's batches. */
export interface BatchStrings { hostId: Uint8Array, hostname: Uint8Array, version: Uint8Array, instance: Uint8Array }

/**
 * protobuf wire bytes of a Batch (proto3: zero values are left out), written
 * at the start of `alloc(size)`'s memory (a new buffer by default).
 */
export function encodeBatch (b: Batch, strings?: BatchStrings, alloc: (size: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const hostIdBytes = strings?.hostId ?? Buffer.from(b.host_id)
  const hostnameBytes = strings?.hostname ?? Buffer.from(b.hostname ?? '')
  const versionBytes = strings?.version ?? Buffer.from(b.agent_version ?? '')
  const instanceBytes = strings?.instance ?? Buffer.from(b.instance ?? '')
  const records = b.records
  const context = b.context ?? EMPTY
  const drops = b.drops ?? {}
  const dl = dropsLen(drops)
  let size = 0
  if (hostIdBytes.length > 0) size += 1 + varintLen(hostIdBytes.length) + hostIdBytes.length
  if (b.seq !== 0) size += 1 + varintLen(b.seq)
  if (b.count !== 0) size += 1 + varintLen(b.count)
  if (records.length > 0) size += 1 + varintLen(records.length) + records.length
  // the drops message is always present (empty when every counter is 0), as protobufjs writes it
  if (b.drops !== undefined) size += 1 + varintLen(dl) + dl
  if (hostnameBytes.length > 0) size += 1 + varintLen(hostnameBytes.length) + hostnameBytes.length
  if ((b.sent_at_ms ?? 0) !== 0) size += 1 + varintLen(b.sent_at_ms as number)
  if (versionBytes.length > 0) size += 1 + varintLen(versionBytes.length) + versionBytes.length
  if ((b.captured_total ?? 0) !== 0) size += 1 + varintLen(b.captured_total as number)
  if (instanceBytes.length > 0) size += 1 + varintLen(instanceBytes.length) + instanceBytes.length
  if (context.length > 0) size += 1 + varintLen(context.length) + context.length
  const out = alloc(size)
  let p = 0
  if (hostIdBytes.length > 0) { out[p++] = 0x0a; p = writeVarint(out, p, hostIdBytes.length); out.set(hostIdBytes, p); p += hostIdBytes.length }
  if (b.seq !== 0) { out[p++] = 0x10; p = writeVarint(out, p, b.seq) }
  if (b.count !== 0) { out[p++] = 0x18; p = writeVarint(out, p, b.count) }
  if (records.length > 0) { out[p++] = 0x22; p = writeVarint(out, p, records.length); out.set(records, p); p += records.length }
  if (b.drops !== undefined) {
    out[p++] = 0x2a
    p = writeVarint(out, p, dl)
    for (let i = 0; i < DROP_FIELDS.length; i++) {
      const v = drops[DROP_FIELDS[i]] ?? 0
      if (v !== 0) { out[p++] = (i + 1) << 3; p = writeVarint(out, p, v) }
    }
  }
  if (hostnameBytes.length > 0) { out[p++] = 0x32; p = writeVarint(out, p, hostnameBytes.length); out.set(hostnameBytes, p); p += hostnameBytes.length }
  if ((b.sent_at_ms ?? 0) !== 0) { out[p++] = 0x38; p = writeVarint(out, p, b.sent_at_ms as number) }
  if (versionBytes.length > 0) { out[p++] = 0x42; p = writeVarint(out, p, versionBytes.length); out.set(versionBytes, p); p += versionBytes.length }
  if ((b.captured_total ?? 0) !== 0) { out[p++] = 0x48; p = writeVarint(out, p, b.captured_total as number) }
  if (instanceBytes.length > 0) { out[p++] = 0x52; p = writeVarint(out, p, instanceBytes.length); out.set(instanceBytes, p); p += instanceBytes.length }
  if (context.length > 0) { out[p++] = 0x5a; p = writeVarint(out, p, context.length); out.set(context, p); p += context.length }
  return out.length === size ? out : out.subarray(0, size)
}
