import { NET_EVENT } from '../../../bpf/abi.js'
import { expandSpans, LeanBatcher, type LeanSpan } from '../../../agent/normalize/lean-batch.js'
import { MsgpackWriter } from '../../../agent/normalize/pack.js'
import type { DecodeEnv } from '../../../agent/normalize/types.js'
import { SYNTH_NO_SOCKET_REASON, SYNTH_RST_REASONS, SynthSource, synthBootToWallNs } from '../../../agent/source/synth.js'
import { makeDevice, makeMetadata } from '../../../shared/ocsf/network.js'
import type { OcsfDevice, OcsfMetadata } from '../../../shared/ocsf/types.js'
import { VERSION } from '../../../shared/version.js'

// Raw NET_EVENTS records exactly as the agent's consumer thread leaves them
// in its slabs: the seeded synthetic source (agent/source/synth.ts), drained
// slab by slab into one SharedArrayBuffer. The mix is the synth source's: 70%
// RST with no socket, 10% ICMP unreachable, 20% TCP state changes, ~5% IPv6.

export interface Slab { offset: number, bytes: number, records: number }

export interface RawFixture {
  sab: SharedArrayBuffer
  buf: Uint8Array
  slabs: Slab[]
  records: number
  slabBytes: number
  env: DecodeEnv
  /** what every record shares: the lean batch context's `shared` */
  shared: { metadata: OcsfMetadata, device: OcsfDevice }
}

/** The agent's default slab: 256 KiB, ~2,500 records, one decoder task. */
export const DEFAULT_SLAB_BYTES = 256 * 1024

export function rawFixture (records: number, slabBytes = DEFAULT_SLAB_BYTES, hostId = 'bench-decode'): RawFixture {
  const perSlab = Math.floor(slabBytes / NET_EVENT.SIZEOF)
  const nSlabs = Math.ceil(records / perSlab)
  const sab = new SharedArrayBuffer(nSlabs * slabBytes)
  const src = new SynthSource({ seed: 1, total: records })
  const slabs: Slab[] = []
  for (let i = 0; i < nSlabs; i++) {
    const r = src.drain(sab, i * slabBytes, slabBytes, 0)
    slabs.push({ offset: i * slabBytes, bytes: r.bytes, records: r.records })
  }
  src.close()
  const info = { hostId, hostname: 'bench-host', agentVersion: VERSION }
  const env: DecodeEnv = {
    bootToWallNs: synthBootToWallNs(),
    rstReasons: SYNTH_RST_REASONS,
    noSocketReason: SYNTH_NO_SOCKET_REASON,
    unmapped: true,
  }
  return { sab, buf: new Uint8Array(sab), slabs, records, slabBytes, env, shared: { metadata: makeMetadata(info), device: makeDevice(info) } }
}

/** The full OCSF objects each slab decodes to (lean, then expanded): the "ready-made" input of a bare pack. */
export function decodedSlabs (f: RawFixture): Array<Array<Record<string, unknown>>> {
  const batcher = new LeanBatcher(f.shared)
  const w = new MsgpackWriter()
  return f.slabs.map(s => {
    const spans: LeanSpan[] = []
    w.reset()
    batcher.encode(w, f.buf, s.offset, s.bytes, f.env, 1 << 30, spans)
    // through JSON: plain objects as an agent that builds them would hold
    // them, not the expand function's, which grow key by key
    return JSON.parse(JSON.stringify(expandSpans(w.buffer, spans))) as Array<Record<string, unknown>>
  })
}
