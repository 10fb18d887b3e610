import { mkdtempSync, rmSync, writeFileSync, cpSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packRecords, packValue } from '../../../shared/codec.js'
import { DIRECTION, NET_ACTIVITY } from '../../../shared/ocsf/constants.js'
import { packLean } from '../../../shared/ocsf/lean.js'
import { makeDevice, makeMetadata, makeNetworkActivity } from '../../../shared/ocsf/network.js'
import type { NetworkActivity } from '../../../shared/ocsf/types.js'
import { rootPath } from '../../../shared/paths.js'
import { DetectionEngine } from '../../../backend/detection/engine.js'
import type { BatchOutcome } from '../../../backend/detection/protocol.js'
import type { FindingEvent } from '../../../backend/detection/finding.js'
import { findCaptions } from '../../../backend/detection/rules/caption-tables.js'
import { applyCaptions } from '../../../backend/detection/rules/captions.js'
import { compileRuleSet, type RuleTiming } from '../../../backend/detection/rules/compile.js'
import { loadRuleDir } from '../../../backend/detection/rules/load.js'

// Shared by the backend tests: real OCSF records (the builder the agent
// uses), real msgpack batches in the lean form agents send (or the full form
// of older agents), a real engine over the shipped rules.

export const SHIPPED_RULES = rootPath('backend', 'rules')

export interface Probe {
  t: number
  src: string
  port: number
  /** default Refuse */
  activity?: number
  proto?: number
  dir?: number
}

export function probeRecord (hostId: string, p: Probe, hostname = hostId): NetworkActivity {
  const src = { hostId, hostname, agentVersion: 'test' }
  return makeNetworkActivity({
    timeMs: p.t,
    activityId: p.activity ?? NET_ACTIVITY.REFUSE,
    directionId: p.dir ?? DIRECTION.INBOUND,
    protocolNum: p.proto ?? 6,
    ipVersion: p.src.includes(':') ? 6 : 4,
    srcIp: p.src,
    srcPort: 40000 + (p.port % 20000),
    dstIp: '10.9.0.1',
    dstPort: p.port,
    assignmentKnown: true,
    statusDetail: 'TCP RST sent: no socket listening (NO_SOCKET)',
  }, makeMetadata(src), makeDevice(src))
}

/** A batch as sent on the wire: records, context (empty in the full form) and count. */
export interface WireBatch { bytes: Buffer, context: Buffer, count: number }

export type Wire = 'lean' | 'full'

/** `records` as one batch: the lean form (shared/ocsf/lean.ts packLean), or the full OCSF maps of older agents. */
export function pack (records: readonly object[], wire: Wire = 'lean'): WireBatch {
  if (wire === 'full') return { bytes: packRecords(records), context: Buffer.alloc(0), count: records.length }
  const lean = packLean(records as ReadonlyArray<Record<string, unknown>>)
  return { bytes: packValue(lean.records), context: packValue(lean.context), count: records.length }
}

export function batch (hostId: string, probes: Probe[], wire: Wire = 'lean'): WireBatch {
  return pack(probes.map(p => probeRecord(hostId, p)), wire)
}

export const LIMITS = { maxStringBytes: 4096, maxDepth: 16, maxRecords: 20_000 }

export class EngineRig {
  readonly engine: DetectionEngine
  readonly findings: FindingEvent[] = []
  readonly #seq = new Map<string, number>()

  readonly #wire: Wire

  constructor (rulesDir = SHIPPED_RULES, timing: RuleTiming = {}, wire: Wire = 'lean') {
    const rules = compileRuleSet(loadRuleDir(rulesDir), { timing })
    applyCaptions(rules, findCaptions(rules))
    this.engine = new DetectionEngine(rules, { limits: LIMITS, productVersion: 'test' })
    this.#wire = wire
  }

  /** Send probes as the host's next batch, at wall time `now`. */
  send (hostId: string, probes: Probe[], now: number, seq?: number): BatchOutcome {
    return this.sendBatch(hostId, batch(hostId, probes, this.#wire), now, seq)
  }

  /** Send a packed batch as the host's next one, at wall time `now`. */
  sendBatch (hostId: string, b: WireBatch, now: number, seq?: number): BatchOutcome {
    const s = seq ?? (this.#seq.get(hostId) ?? 0) + 1
    this.#seq.set(hostId, Math.max(s, this.#seq.get(hostId) ?? 0))
    const out = this.engine.processBatch({ hostId, seq: s, count: b.count, bytes: b.bytes, context: b.context, recvAt: now }, now)
    this.findings.push(...this.engine.drain().findings)
    return out
  }

  tick (now: number): void {
    this.engine.tick(now)
    this.findings.push(...this.engine.drain().findings)
  }

  of (rule: string): FindingEvent[] {
    return this.findings.filter(f => f.summary.rule === rule)
  }
}

/** A temp folder holding the shipped rules plus `extra` files (name → text). */
export function rulesDir (extra: Record<string, string> = {}, withShipped = true): { dir: string, cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'picket-rules-'))
  if (withShipped) cpSync(SHIPPED_RULES, dir, { recursive: true })
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text)
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

export function tempDir (prefix = 'picket-test-'): { dir: string, cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** `n` distinct ports starting at `from`. */
export function ports (n: number, from = 1000): number[] {
  return Array.from({ length: n }, (_, i) => from + i)
}
