import { setTimeout as sleep } from 'node:timers/promises'
import { buildPlan, type Plan, type PlanOptions } from './plan.js'
import { AgentStream, connectCollector, type ClientOptions, type StreamStats } from './ship.js'

// The deterministic injector as a library: `injectScan()` plans seeded,
// EDR-shaped network_activity records and ships them as agents would, one
// Ship stream per host. Benchmarks use the pieces: buildPlan() once, then
// AgentStream.send() with pre-packed batches as fast as the collector acks.

export { buildPlan, nthAddress, type Plan, type PlanOptions, type PlannedHost } from './plan.js'
export { AgentStream, connectCollector, type ClientOptions, type StreamOptions, type StreamStats } from './ship.js'
export { Prng } from './prng.js'

export interface InjectOptions extends PlanOptions, ClientOptions {
  /** collector address HOST:PORT */
  collector: string
  /** batches in flight per host stream (default 32) */
  window?: number
  /** first seq of every host stream (default 1, as a fresh agent) */
  startSeq?: number
  /** give up after this long (default 120 s) */
  timeoutMs?: number
}

export interface InjectSummary {
  collector: string
  describe: string
  hosts: number
  sources: string[]
  ports: number
  protocol: 'tcp' | 'udp'
  records: { probe: number, benign: number, total: number }
  batches: { sent: number, ok: number, duplicate: number, refused: number, retried: number }
  refusedByLimit: Record<string, number>
  firstRefusal: string | undefined
  reconnects: number
  elapsedMs: number
  recordsPerSec: number
  expected: string[]
  hostIds: string[]
}

export async function injectScan (o: InjectOptions): Promise<InjectSummary> {
  const plan = buildPlan(o)
  return await shipPlan(plan, o)
}

export async function shipPlan (plan: Plan, o: Pick<InjectOptions, 'collector' | 'window' | 'startSeq' | 'timeoutMs' | 'agentVersion' | 'tls'>): Promise<InjectSummary> {
  const client = connectCollector(o.collector, o.tls !== undefined ? { tls: o.tls } : {})
  const t0 = Date.now()
  const streams: AgentStream[] = []
  let timer: NodeJS.Timeout | undefined
  try {
    const run = Promise.all(plan.hosts.map(async h => {
      const s = new AgentStream(client, h.hostId, { hostname: h.hostname, agentVersion: o.agentVersion ?? 'inject-scan', window: o.window ?? 32, startSeq: o.startSeq ?? 1 })
      streams.push(s)
      const acks: Array<Promise<unknown>> = []
      for (let i = 0; i < h.batches.length; i++) {
        const wait = h.due[i] - (Date.now() - t0)
        if (wait > 0) await sleep(wait)
        acks.push(s.send(h.batches[i], h.counts[i], h.counts[i], h.contexts[i]))
      }
      await Promise.all(acks)
      await s.end()
    }))
    const timeoutMs = o.timeoutMs ?? 120_000
    await Promise.race([run, new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`inject-scan: no acks for everything within ${timeoutMs} ms; is the collector at ${o.collector} up?`)), timeoutMs)
    })])
  } finally {
    if (timer !== undefined) clearTimeout(timer)
    for (const s of streams) s.abort('inject-scan stopped')
    client.close()
  }
  const elapsedMs = Date.now() - t0
  const sum = (f: (s: StreamStats) => number): number => streams.reduce((a, s) => a + f(s.stats), 0)
  const refusedByLimit: Record<string, number> = {}
  for (const s of streams) for (const [k, v] of Object.entries(s.stats.refusedByLimit)) refusedByLimit[k] = (refusedByLimit[k] ?? 0) + v
  const total = plan.probeRecords + plan.benignRecords
  return {
    collector: o.collector,
    describe: plan.describe,
    hosts: plan.hosts.length,
    sources: plan.sources,
    ports: plan.ports.length,
    protocol: plan.protocol,
    records: { probe: plan.probeRecords, benign: plan.benignRecords, total },
    batches: { sent: sum(s => s.sent), ok: sum(s => s.ok), duplicate: sum(s => s.duplicate), refused: sum(s => s.refused), retried: sum(s => s.retried) },
    refusedByLimit,
    firstRefusal: streams.find(s => s.stats.firstRefusal !== undefined)?.stats.firstRefusal,
    reconnects: sum(s => s.reconnects),
    elapsedMs,
    recordsPerSec: Math.round(total / Math.max(0.001, elapsedMs / 1000)),
    expected: plan.expected,
    hostIds: plan.hosts.map(h => h.hostId),
  }
}

export function formatSummary (s: InjectSummary): string {
  const lines = [
    `inject-scan → ${s.collector}`,
    `  pattern   ${s.describe}`,
    `  records   ${s.records.probe} probe + ${s.records.benign} benign = ${s.records.total}, in ${s.batches.sent} batches on ${s.hosts} host stream${s.hosts === 1 ? '' : 's'}`,
    `  acks      ${s.batches.ok} OK, ${s.batches.duplicate} DUPLICATE, ${s.batches.refused} REFUSED, ${s.batches.retried} resent after RETRY`,
    `  elapsed   ${s.elapsedMs} ms (${s.recordsPerSec} records/s)`,
    `  expect    ${s.expected.join('; ')}`,
  ]
  if (s.batches.refused > 0) {
    lines.push(`  refused   ${Object.entries(s.refusedByLimit).map(([k, v]) => `${v} × ${k}`).join(', ')}: ${s.firstRefusal ?? ''}`)
  }
  if (s.batches.duplicate > 0) {
    lines.push(`  note      the collector had already accepted ${s.batches.duplicate} of these (host id, seq) pairs, so they were not counted again; use another --host-id or --start-seq to inject anew`)
  }
  return lines.join('\n') + '\n'
}
