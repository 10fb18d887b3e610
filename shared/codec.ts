import { Packr, Unpackr } from 'msgpackr'

// Every batch must decode on its own: a replayed or redelivered batch lands
// on a process that never saw the batches before it. msgpackr's shared
// `structures` would break that, so records are packed without them; record
// definitions, when msgpackr uses them, travel inside each batch.
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

export function packRecords (records: readonly unknown[]): Buffer {
  return packr.pack(records)
}

export function unpackRecords (bytes: Uint8Array): unknown[] {
  const out = unpackr.unpack(bytes)
  if (!Array.isArray(out)) throw new TypeError(`batch records must be a msgpack array, got ${typeof out}`)
  return out
}

export function packValue (value: unknown): Buffer {
  return packr.pack(value)
}

export function unpackValue (bytes: Uint8Array): unknown {
  return unpackr.unpack(bytes)
}
