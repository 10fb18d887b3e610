import type { AckStatus, DropCounters } from '../shared/enums.js'
import type { HostDelta } from './store/index.js'

// Per-host traffic as the collector sees it, accumulated per batch in memory
// and handed to the store once a second: the store never sees a batch. A host
// idle for idleMs, with everything handed over, is let go (the store keeps
// its row, drop counters included).

interface Acc {
  hostname: string | undefined
  agentVersion: string | undefined
  lastSeen: number
  records: number
  batches: number
  bytes: number
  capturedTotal: number | undefined
  drops: Partial<DropCounters> | undefined
  refused: number
  duplicates: number
  rate: number
  dirty: boolean
}

export class HostTracker {
  readonly #hosts = new Map<string, Acc>()
  readonly #idleMs: number
  #lastFlush = Date.now()
  /** hosts let go for being idle (cumulative) */
  aged = 0

  constructor (idleMs = 600_000) {
    this.#idleMs = idleMs
  }

  /** hosts held now */
  get size (): number {
    return this.#hosts.size
  }

  #acc (hostId: string): Acc {
    let a = this.#hosts.get(hostId)
    if (a === undefined) {
      a = { hostname: undefined, agentVersion: undefined, lastSeen: 0, records: 0, batches: 0, bytes: 0, capturedTotal: undefined, drops: undefined, refused: 0, duplicates: 0, rate: 0, dirty: false }
      this.#hosts.set(hostId, a)
    }
    return a
  }

  /** One answered batch. `records` counts only accepted records. */
  note (hostId: string, b: { hostname?: string, agentVersion?: string, records: number, bytes: number, capturedTotal?: number, drops?: Partial<DropCounters> }, status: AckStatus, now: number): void {
    const a = this.#acc(hostId)
    a.dirty = true
    a.lastSeen = now
    if (b.hostname !== undefined && b.hostname !== '') a.hostname = b.hostname
    if (b.agentVersion !== undefined && b.agentVersion !== '') a.agentVersion = b.agentVersion
    if (b.capturedTotal !== undefined && b.capturedTotal > 0) a.capturedTotal = b.capturedTotal
    if (b.drops !== undefined && b.drops !== null) a.drops = b.drops
    a.bytes += b.bytes
    if (status === 'OK') { a.records += b.records; a.batches++ } else if (status === 'DUPLICATE') a.duplicates++
    else if (status === 'REFUSED') a.refused++
  }

  /** Deltas since the last flush; rates are records per second, smoothed. */
  flush (now: number): HostDelta[] {
    const dt = Math.max(0.001, (now - this.#lastFlush) / 1000)
    this.#lastFlush = now
    const out: HostDelta[] = []
    for (const [hostId, a] of this.#hosts) {
      const inst = a.records / dt
      a.rate = a.rate === 0 ? inst : a.rate * 0.7 + inst * 0.3
      if (!a.dirty) {
        if (a.rate > 0.01) out.push({ hostId, lastSeen: a.lastSeen, records: 0, batches: 0, bytes: 0, recordsPerSec: round(a.rate), refusedBatches: 0, duplicateBatches: 0 })
        else {
          a.rate = 0
          if (now - a.lastSeen >= this.#idleMs) { this.#hosts.delete(hostId); this.aged++ }
        }
        continue
      }
      out.push({
        hostId,
        ...(a.hostname !== undefined ? { hostname: a.hostname } : {}),
        ...(a.agentVersion !== undefined ? { agentVersion: a.agentVersion } : {}),
        lastSeen: a.lastSeen,
        records: a.records,
        batches: a.batches,
        bytes: a.bytes,
        recordsPerSec: round(a.rate),
        ...(a.capturedTotal !== undefined ? { capturedTotal: a.capturedTotal } : {}),
        ...(a.drops !== undefined ? { drops: a.drops } : {}),
        refusedBatches: a.refused,
        duplicateBatches: a.duplicates,
      })
      a.records = 0; a.batches = 0; a.bytes = 0; a.refused = 0; a.duplicates = 0; a.dirty = false
    }
    return out
  }

  /** Sum of the latest cumulative drop counters of the agents heard from within idleMs, by cause. */
  dropTotals (): Record<string, number> {
    const out: Record<string, number> = {}
    for (const a of this.#hosts.values()) {
      if (a.drops === undefined || a.drops === null) continue
      for (const [k, v] of Object.entries(a.drops)) out[k] = (out[k] ?? 0) + (v ?? 0)
    }
    return out
  }
}

function round (x: number): number {
  return Math.round(x * 100) / 100
}
