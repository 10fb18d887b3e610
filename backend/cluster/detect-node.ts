import { hostname } from 'node:os'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import type { HostPort } from '../../shared/hostport.js'
import type { Logger } from '../../shared/logger.js'
import { rootPath } from '../../shared/paths.js'
import { VERSION } from '../../shared/version.js'
import { WorkerPoolBridge } from '../bridge/pool.js'
import type { DetectionSink } from '../bridge/types.js'
import { DEFAULT_DETECTION_MEMORY } from '../detection/budget.js'
import type { FindingEvent } from '../detection/finding.js'
import type { FleetDelta } from '../detection/protocol.js'
import { compileRuleSet, type RuleTiming } from '../detection/rules/compile.js'
import { loadRuleDir } from '../detection/rules/load.js'
import { resolveCaptions } from '../detection/rules/captions.js'
import { DEFAULT_LIMITS } from '../limits.js'
import { longestWindowMs } from './backend-side.js'
import { createDetectMetrics, serveMetrics } from './detect-metrics.js'
import { LeaseKeeper } from './leases.js'
import { connectNats, findBatchStream, leaseBucket, partitionConsumer, replicasFor, type NatsSecurity } from './nats.js'
import { PartitionRunner } from './partition.js'
import { BATCH_STREAM, encodeFindings, FINDING_SUBJECT, partitionOf, type FindingMessage } from './wire.js'

// `picket detect`: a detection node. The same detection workers as the
// in-process backend (the worker pool and backend/detection), fed from the
// JetStream partitions this node holds the lease of; what they find goes to
// picket.findings, stamped with the lease token, for the backend to store.

export interface DetectNodeOptions {
  servers: string[]
  /** NATS credentials and TLS */
  security?: NatsSecurity
  nodeId?: string
  workers?: number
  rulesDir?: string
  timing?: RuleTiming
  /** /metrics and /healthz; false for none */
  http: HostPort | false
  leaseTtlMs?: number
  detectionMemory?: number
  logger: Logger
}

export interface DetectNode {
  nodeId: string
  metricsUrl: string | undefined
  owned: () => number[]
  close: () => Promise<void>
}

export async function startDetectNode (o: DetectNodeOptions): Promise<DetectNode> {
  const nodeId = o.nodeId ?? `${hostname()}-${process.pid}`
  const logger = o.logger
  const ttlMs = o.leaseTtlMs ?? 10_000
  const collection = loadRuleDir(o.rulesDir ?? rootPath('backend', 'rules'))
  const rules = compileRuleSet(collection, { timing: o.timing ?? {} })
  const captions = await resolveCaptions(rules)
  const replayMs = longestWindowMs(rules)
  const metrics = createDetectMetrics()
  const nc = await connectNats(o.servers, `picket-detect-${nodeId}`, 5000, o.security)
  const cleanup: Array<() => Promise<void>> = [async () => { await nc.drain().catch(() => nc.close()) }]
  const unwind = async (): Promise<void> => { for (const f of cleanup.reverse()) await f().catch(() => {}) }
  try {
    const jsm = await jetstreamManager(nc, { timeout: 10_000 })
    const js = jetstream(nc, { timeout: 10_000 })
    const { partitions } = await findBatchStream(jsm)
    const kv = await leaseBucket(nc, ttlMs, replicasFor(nc))
    /** the token of each partition this node held last: what its writes are stamped with, even late */
    const tokens = new Map<number, number>()
    const publishing = new Set<Promise<unknown>>()
    const publish = async (p: number, part: Pick<FindingMessage, 'findings' | 'fleet'>): Promise<void> => {
      const token = tokens.get(p)
      if (token === undefined) return
      // a finding not stored in the stream would be lost once its batch is acked: retry while the node runs
      for (let attempt = 1; ; attempt++) {
        const sent = js.publish(FINDING_SUBJECT, encodeFindings({ node: nodeId, partition: p, token, ...part }))
        publishing.add(sent)
        try {
          await sent
          metrics.findingsPublished.inc()
          return
        } catch (err) {
          logger.error({ err: (err as Error).message, partition: p, attempt }, `findings not published on ${FINDING_SUBJECT}; retrying`)
          if (nc.isClosed()) return
          await new Promise(resolve => setTimeout(resolve, Math.min(5000, 250 * attempt)))
        } finally {
          publishing.delete(sent)
        }
      }
    }
    const byPartition = <T>(items: T[], host: (x: T) => string | undefined): Map<number, T[]> => {
      const out = new Map<number, T[]>()
      for (const x of items) {
        const p = partitionOf(host(x) ?? '', partitions)
        let l = out.get(p)
        if (l === undefined) out.set(p, l = [])
        l.push(x)
      }
      return out
    }
    const sink: DetectionSink = {
      findings: async (events: FindingEvent[]) => {
        await Promise.all([...byPartition(events, e => e.summary.hostId)].map(async ([p, findings]) => await publish(p, { findings })))
      },
      fleet: async (deltas: FleetDelta[]) => {
        await Promise.all([...byPartition(deltas, d => d.host)].map(async ([p, fleet]) => await publish(p, { fleet })))
      },
      settled: async () => { await Promise.allSettled([...publishing]) },
      hosts: () => {},
      stats: () => {},
    }
    const pool = new WorkerPoolBridge({
      workers: o.workers ?? 1,
      rules: collection,
      captions,
      timing: o.timing ?? {},
      limits: DEFAULT_LIMITS,
      productVersion: VERSION,
      // the stream's Nats-Msg-Id dedup stands in for the store's floors
      floorsOf: () => [],
      memoryBytes: o.detectionMemory ?? DEFAULT_DETECTION_MEMORY,
      sink,
      logger,
    })
    await pool.start()
    cleanup.push(async () => { await pool.close() })

    const runners = new Map<number, PartitionRunner>()
    const leases: LeaseKeeper = new LeaseKeeper(kv, nodeId, partitions, ttlMs, {
      acquired: async (p, token) => {
        tokens.set(p, token)
        metrics.leaseChanges.inc({ change: 'acquired' })
        const r = new PartitionRunner({
          partition: p,
          js,
          jsm,
          bridge: pool,
          replayMs,
          holds: () => leases.holds(p),
          logger,
          onFailed: () => { leases.abandon(p) },
          onReplayed: (s, n) => {
            metrics.replaySeconds.observe(s)
            metrics.replayBatches.inc(n)
            logger.info({ partition: p, seconds: Math.round(s * 1000) / 1000, batches: n }, 'partition replayed; live')
          },
        })
        runners.set(p, r)
        r.start()
        metrics.owned.set(runners.size)
      },
      stopped: async (p, why) => {
        metrics.leaseChanges.inc({ change: why })
        const r = runners.get(p)
        runners.delete(p)
        metrics.owned.set(runners.size)
        metrics.lag.remove({ partition: String(p) })
        await r?.stop()
      },
    }, logger)
    leases.start()
    cleanup.push(async () => { await leases.close() })

    const lagTimer = setInterval(() => {
      metrics.liveNodes.set(leases.liveNodes)
      for (const p of runners.keys()) {
        jsm.consumers.info(BATCH_STREAM, partitionConsumer(p))
          .then(ci => { if (runners.has(p)) metrics.lag.set({ partition: String(p) }, ci.num_pending + ci.num_ack_pending) })
          .catch(() => {})
      }
    }, 2000)
    lagTimer.unref()
    cleanup.push(async () => { clearInterval(lagTimer) })

    let metricsUrl: string | undefined
    if (o.http !== false) {
      const s = await serveMetrics(o.http, metrics.registry, () => ({ node: nodeId, partitions, owned: [...runners.keys()].sort((a, b) => a - b), liveNodes: leases.liveNodes }))
      metricsUrl = s.url
      cleanup.push(async () => { await new Promise<void>(resolve => s.server.close(() => resolve())) })
    }
    logger.info({ node: nodeId, partitions, replayMs, leaseTtlMs: ttlMs }, 'detection node started')
    let closing: Promise<void> | undefined
    return {
      nodeId,
      metricsUrl,
      owned: () => [...runners.keys()].sort((a, b) => a - b),
      close: async () => { closing ??= unwind(); await closing },
    }
  } catch (err) {
    await unwind()
    throw err
  }
}
