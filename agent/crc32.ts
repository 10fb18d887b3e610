import * as zlib from 'node:zlib'

// CRC-32 (IEEE, as zlib and gzip compute it). Node has zlib.crc32 from
// 20.15 and 22.2; older 20.x releases get the table-driven version.

type Crc32 = (data: Uint8Array, initial?: number) => number

let table: Int32Array | undefined

function crc32Table (): Int32Array {
  if (table !== undefined) return table
  table = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c
  }
  return table
}

export function crc32Js (data: Uint8Array, initial = 0): number {
  const t = crc32Table()
  let c = ~initial
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8)
  return ~c >>> 0
}

const native = (zlib as unknown as { crc32?: Crc32 }).crc32

export const crc32: Crc32 = native !== undefined ? (data, initial = 0) => native(data, initial) : crc32Js
