import { join } from 'node:path'
import { createLogger, type Logger } from '../shared/logger.js'
import { VERSION } from '../shared/version.js'
import { Cleanups } from './cleanups.js'
import { OutputArena } from './arena.js'
import { SlabCommit } from './commit.js'
import { Consumer } from './consumer/host.js'
import { credentialsFor } from './credentials.js'
import { DecoderPool } from './decode-pool/pool.js'
import { DropLedger } from './drops.js'
import { Heartbeat } from './heartbeat.js'
import { hostDirName } from './host-id.js'
import { createAgentMetrics, serveMetrics, type MetricsServer } from './metrics.js'
import { enabledClasses, resolveAgentOptions } from './options.js'
import { createNameCacheMemory } from './normalize/dns-names.js'
import { createProcTable } from './proctable/table.js'
import { Shipper } from './ship/shipper.js'
import { Spool } from './ship/spool.js'
import { SlabPool } from './slabs.js'
import { openCapture } from './source/index.js'
import { AgentStatsRefresher } from './stats.js'
import type { AgentHandle, AgentOptions, AgentStats } from './types.js'

export type { AgentHandle, AgentOptions, AgentStats } from './types.js'

// The agent: consumer threads (one per class's ring) → slabs → decoder pool
// → spool → shipper.
//
//   consumer thread ──SlabDescriptor──▶ main ──task──▶ piscina decoder
//        ▲                               │                 │
//        └──── slab freed (Atomics) ◀────┴──── batch ◀─────┘
//                                        │ in slab order (commit.ts)
//                                        ▼
//                          spool (disk, seq) ──▶ shipper (gRPC Ship)
//
// Batches are committed to the spool in the order their slabs were handed
// on, so seq order is capture order within a ring even though decoders
// finish out of order; a batch holds one slab, so one ring's class, and the
// spool and the wire mix them. The process ring's consumer also keeps the
// process table (agent/proctable) every decoder reads.

export async function startAgent (options: AgentOptions): Promise<AgentHandle> {
  const cfg = resolveAgentOptions(options)
  const log: Logger = options.logger ?? createLogger('picket-agent', cfg.logLevel !== undefined ? { level: cfg.logLevel } : {})
  const started = Date.now()
  const cleanups = new Cleanups(log)

  try {
    // -- spool first: it owns the seq, and refuses a second agent on the same data
    const spool = Spool.open({ dir: join(cfg.dataDir, 'spool', hostDirName(cfg.hostId)), maxBytes: cfg.spoolMaxBytes, segmentBytes: cfg.spoolSegmentBytes, log })
    cleanups.push(() => { spool.close() })
    const drops = new DropLedger()

    const capture = await openCapture(cfg.source, cfg, enabledClasses(cfg.classes), cfg.classes.trim() === 'all'
      ? (className, err) => { log.warn({ class: className, err: err.message }, 'this class cannot be captured on this kernel; capturing the others') }
      : undefined)
    cleanups.push(() => { capture.close() })
    for (const r of capture.rings) if (r.degraded !== undefined) log.warn({ class: r.className }, r.degraded)

    // -- decoders
    const pools = new Map(capture.rings.map(r => [r.name, SlabPool.create(cfg.slabs, cfg.slabBytes)]))
    const procRing = capture.rings.find(r => r.writesProcTable)?.name
    const procTable = procRing !== undefined ? createProcTable() : undefined
    // DNS answers name the addresses later connections go to; every decoder reads and writes it
    const names = capture.rings.some(r => r.name === 'dns') ? createNameCacheMemory() : undefined
    // a slab's lean output is about its raw size (BENCHMARKS.md, decode); twice that fits any mix but the
    // most extreme, which the worker then writes into memory of its own. One region per slab in flight,
    // and some for batches the spool cache still holds.
    const arena = new OutputArena(cfg.slabs * capture.rings.length + 8, 2 * cfg.slabBytes + (64 << 10))
    const decoders = new DecoderPool({
      threads: cfg.decoders,
      workerData: {
        rings: Object.fromEntries([...pools].map(([name, pool]) => [name, pool.data])),
        ...(procTable !== undefined && procRing !== undefined ? { procTable, procRing } : {}),
        ...(names !== undefined ? { names } : {}),
        arena: arena.shape,
        source: { hostId: cfg.hostId, hostname: cfg.hostname, agentVersion: VERSION },
        rstReasons: capture.decodeInfo.rstReasons,
        noSocketReason: capture.decodeInfo.noSocketReason,
        maxBatchBytes: cfg.maxBatchBytes,
        unmapped: cfg.unmapped,
      },
      ...(cfg.decodeWorker !== undefined ? { worker: cfg.decodeWorker } : {}),
      onRetry: (err, attempt) => { log.warn({ err: err.message, attempt }, 'a decoder worker died mid-task; decoding its slab again') },
    })
    cleanups.push(async () => { await decoders.close() })
    await decoders.ready(30_000)

    let metricsServer: MetricsServer | undefined
    const shipper = new Shipper({
      target: cfg.collector.toString(),
      credentials: credentialsFor(cfg.tls),
      ...(cfg.tls?.serverName !== undefined ? { serverName: cfg.tls.serverName } : {}),
      hostId: cfg.hostId,
      hostname: cfg.hostname,
      agentVersion: VERSION,
      spool,
      window: cfg.window,
      windowBytes: cfg.windowBytes,
      backoff: { initialMs: cfg.backoffInitialMs, maxMs: cfg.backoffMaxMs },
      ackTimeoutMs: cfg.ackTimeoutMs,
      drops: () => drops.counters,
      capturedTotal: () => commit.captured,
      log,
      onDropped: (cause, count) => { drops.add(cause, count) },
      onAck: (ack, latencyMs) => { if (latencyMs !== undefined) metrics.ackLatency.observe({ status: ack.status }, latencyMs / 1000) },
    })
    cleanups.push(async () => { await shipper.close() })

    // -- slab → decoder → spool, committed in slab order
    const commit: SlabCommit = new SlabCommit({
      decoders,
      spool,
      drops,
      log,
      release: (slab, ring) => { pools.get(ring)?.release(slab) },
      onCommit: () => { shipper.notify() },
      // slabs arrive as events: never before `stats` below is set
      bootToWallNs: (): number => stats.bootToWallNs,
      arena,
    })

    let resolveFatal: (e: Error) => void = () => {}
    const fatal = new Promise<Error>(resolve => { resolveFatal = resolve })
    const consumers = capture.rings.map(r => new Consumer({
      ring: r.name,
      source: r.spec,
      pool: pools.get(r.name) as SlabPool,
      maxRecordBytes: r.maxRecordBytes,
      tuning: { lingerMs: cfg.lingerMs, drainTimeoutMs: cfg.drainTimeoutMs },
      onSlab: d => { commit.decode(d) },
      onError: err => {
        log.fatal({ err, ring: r.name }, 'a consumer thread died; the agent cannot capture')
        resolveFatal(err)
      },
      ...(r.writesProcTable && procTable !== undefined ? { procTable } : {}),
    }))
    for (const consumer of consumers) cleanups.push(async () => { await consumer.terminate() })

    const stats: AgentStatsRefresher = new AgentStatsRefresher({ cfg, started, consumers, capture, procTable, drops, commit, decoders, shipper, spool, log, metricsUrl: () => metricsServer?.url })
    const heartbeat = new Heartbeat({ spool, everyMs: cfg.heartbeatMs, appended: commit, onAppend: () => { shipper.notify() }, log })
    const timer = setInterval(() => {
      heartbeat.tick()
      spool.tick()
      stats.tick()
    }, cfg.statsIntervalMs)
    timer.unref()
    cleanups.push(() => { clearInterval(timer) })

    const metrics = createAgentMetrics(() => stats.snapshot())
    if (cfg.metricsPort !== undefined) {
      const ms = await serveMetrics(metrics.registry, cfg.metricsPort, cfg.metricsHost)
      metricsServer = ms
      cleanups.push(async () => { await ms.close() })
    }

    shipper.start()
    log.info({
      hostId: cfg.hostId, instance: spool.instance, collector: cfg.collector.toString(), source: cfg.source, spool: spool.dir, nextSeq: spool.nextSeq,
      rings: capture.rings.map(r => r.name), decoders: cfg.decoders, slabs: cfg.slabs, slabBytes: cfg.slabBytes, metrics: metricsServer?.url,
    }, 'agent started')

    let stopping: Promise<AgentStats> | undefined
    const stop = async (): Promise<AgentStats> => {
      stopping ??= (async () => {
        clearInterval(timer)
        await stats.settled()
        // 1. capture no more; hand off what the rings held, the repeats the kernel still folds among it
        try { capture.flush?.() } catch (err) { log.warn({ err: (err as Error).message }, 'the kernel\'s pending fold summaries could not be flushed') }
        try {
          stats.consumers = await Promise.all(consumers.map(async c => await c.stop(Math.max(1000, cfg.shutdownTimeoutMs))))
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'consumer did not stop cleanly')
        }
        // 2. decode and spool every slab in flight
        await commit.idle()
        // 3. the last kernel counters, then ship what the window allows
        await stats.refresh()
        const flushed = await shipper.flush(cfg.shutdownTimeoutMs)
        const final = stats.snapshot()
        log.info({
          flushed, captured: final.captured, spooledBatches: final.spooledBatches, ackedBatches: final.shipper.ackedBatches,
          leftInSpool: final.spool.pendingBatches, drops: final.drops,
        }, flushed ? 'agent stopped; every batch was acked' : 'agent stopped; unacked batches stay in the spool for the next start')
        await cleanups.run()
        return final
      })()
      return await stopping
    }

    return {
      hostId: cfg.hostId,
      get metricsUrl () { return metricsServer?.url },
      stats: async () => {
        if (stopping === undefined) {
          await stats.settled()
          await stats.refresh()
        }
        return stats.snapshot()
      },
      reconfigure: async t => await Promise.all(consumers.map(async c => await c.reconfigure(t))),
      stop,
      fatal,
    }
  } catch (err) {
    await cleanups.run()
    throw err
  }
}
