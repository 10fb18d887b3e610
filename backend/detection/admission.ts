import type { ErrorCode } from '../../shared/errors.js'
import type { Actor } from './actors.js'
import { RecordError, ScanError, T_ABSENT, T_NUM, T_STR, type Projector, type ScanLimits } from './projector.js'
import type { BatchInput, BatchOutcome, DetectionRefusalReason, EngineStats, Refusal } from './protocol.js'
import { EVIDENCE_SLOT, HOST_FIELD } from './rules/compile.js'

// What a batch passes before its rows reach the rules: a seq its agent
// instance has not sent before, a scan within the limits over well-formed
// msgpack (with a context that describes its lean records), records whose
// fields mean something (field-checks.ts), as many records as the batch
// says, and no record of another host. A refused batch's seq is spent. A refusal names its reason
// and says what to do; the gRPC status is the collector's business.

const HOST = EVIDENCE_SLOT[HOST_FIELD]
const HOSTNAME = EVIDENCE_SLOT['device.hostname']

function refusal (reason: DetectionRefusalReason, error: ErrorCode, message: string): Refusal {
  return { status: 'refused', reason, error, message }
}

function scanRefusal (err: ScanError): Refusal {
  if (err instanceof RecordError) {
    return refusal('invalid_record', 'PICKET_ERR_RECORD', `${err.message}; the whole batch was refused and none of it was counted: whatever wrote it must send OCSF values (fix or upgrade the sender)`)
  }
  const limit = err.limit
  if (limit === undefined) {
    return refusal('decode', 'PICKET_ERR_DECODE', `${err.message}; the batch was refused: records must be one msgpack array of OCSF objects, or of lean records [shape, value, ...] whose shapes the batch's context lists (shared/ocsf/lean.ts packLean)`)
  }
  return refusal(limit, 'PICKET_ERR_LIMIT', `${err.message}; the batch was refused: make the agent send smaller or flatter records, or raise the collector's --${limit.replace(/_/g, '-')}`)
}

/** A batch the engine threw on: a bug, refused so that it cannot crash every worker it is resent to. */
export function internalRefusal (worker: number, err: Error): Refusal {
  return refusal('internal', 'PICKET_ERR_DECODE', `detection worker ${worker} failed on this batch (${err.message}); it was refused and not counted. This is a Picket bug: please report it with the log line`)
}

/**
 * Admit `input` to `actor`: the number of rows now in the projector's
 * columns, or the outcome of a batch that goes no further. Counts both.
 */
export function admit (input: BatchInput, actor: Actor, projector: Projector, limits: ScanLimits, stats: EngineStats): number | BatchOutcome {
  if (!actor.seqs.accept(input.instance ?? '', input.seq, actor.lastWall)) {
    actor.duplicates++
    stats.duplicates++
    return { status: 'duplicate' }
  }
  stats.batches++
  actor.batches++
  const out = check(input, projector, limits)
  if (typeof out !== 'number') {
    actor.refused++
    stats.refused++
    return out
  }
  const c = projector.cols
  if (actor.hostname === undefined && out > 0 && c.typ[HOSTNAME] === T_STR) actor.hostname = c.str[HOSTNAME]
  return out
}

function check (input: BatchInput, projector: Projector, limits: ScanLimits): number | Refusal {
  let n: number
  try {
    n = projector.scan(input.bytes, limits, input.recvAt, input.context)
  } catch (err) {
    if (!(err instanceof ScanError)) throw err
    return scanRefusal(err)
  }
  if (n !== input.count) {
    return refusal('decode', 'PICKET_ERR_DECODE', `the batch says count ${input.count} but records holds ${n}; the batch was refused: set count to the number of records`)
  }
  const c = projector.cols
  const S = c.S
  for (let r = 0; r < n; r++) {
    const b = r * S
    // device.uid is absent (the batch's host) or the batch's host id as a string; anything else is another host's record
    const ht = c.typ[b + HOST]
    if (ht !== T_ABSENT && (ht !== T_STR || c.str[b + HOST] !== input.hostId)) {
      const shown = ht === T_STR ? `'${String(c.str[b + HOST]).slice(0, 128)}'` : ht === T_NUM ? String(c.num[b + HOST]) : 'a value that is not a string'
      return refusal('host_id', 'PICKET_ERR_HOST_ID', `record ${r} has device.uid ${shown} but the batch is from host '${input.hostId}'; the batch was refused: an agent ships only its own records, with device.uid its host id`)
    }
  }
  return n
}
