import { expandSpans, LeanBatcher, type LeanSpan } from '../../agent/normalize/lean-batch.js'
import { MsgpackWriter } from '../../agent/normalize/pack.js'
import type { DecodeEnv, DecodeResult } from '../../agent/normalize/types.js'
import type { NetworkActivity, OcsfDevice, OcsfMetadata } from '../../shared/ocsf/types.js'

// Raw records through the agent's decoder (the class normalisers and the
// lean batch encoder), then expanded back into full OCSF objects, as the
// backend reads them.

export interface LeanDecoded {
  w: MsgpackWriter
  spans: LeanSpan[]
  res: DecodeResult
  objects: NetworkActivity[]
}

export function leanDecode (buf: Uint8Array, env: DecodeEnv, shared: { metadata: OcsfMetadata, device: OcsfDevice }, maxBatchBytes = 3 << 20): LeanDecoded {
  const w = new MsgpackWriter(1024) // small on purpose: it must grow
  const spans: LeanSpan[] = []
  const res = new LeanBatcher(shared).encode(w, buf, 0, buf.length, env, maxBatchBytes, spans)
  return { w, spans, res, objects: expandSpans(w.buffer, spans) as unknown as NetworkActivity[] }
}
