import * as grpc from '@grpc/grpc-js'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KernelCounters } from '../bpf/types.js'
import { PicketError } from '../shared/errors.js'
import { createLogger, type Logger } from '../shared/logger.js'
import { VERSION } from '../shared/version.js'
import { Consumer } from './consumer/host.js'
import { NET_EVENT } from './decode/layout.js'
import { SYNTH_NO_SOCKET_REASON, SYNTH_RST_REASONS, synthBootToWallNs } from './decode/synth.js'
import { DecoderPool } from './decoder/pool.js'
import { DropLedger } from './drops.js'
import { hostDirName } from './host-id.js'
import { loadBpf, recursionMisses, reserveFailures, type NetProbeLike } from './kernel.js'
import { createAgentMetrics, serveMetrics, type MetricsServer } from './metrics.js'
import { resolveAgentOptions, type AgentConfig } from './options.js'
import { BufferPool } from './buffers.js'
import type { ConsumerStats, DecodeOutput, DecodeTask, SlabDescriptor, SourceSpec } from './protocol.js'
import { Shipper } from './ship/shipper.js'
import { Spool } from './ship/spool.js'
import { SlabPool } from './slabs.js'
import type { AgentHandle, AgentOptions, AgentStats } from './types.js'

export type { AgentHandle, AgentOptions, AgentStats } from './types.js'

// The agent: consumer thread(s) → slabs → decoder pool → spool → shipper.
//
//   consumer thread ──SlabDescriptor──▶ main ──task──▶ piscina decoder
//        ▲                               │                 │
//        └──── slab freed (Atomics) ◀────┴──── batch ◀─────┘
//                                        │ in slab order
//                                        ▼
//                          spool (disk, seq) ──▶ shipper (gRPC Ship)
//
// Batches are committed to the spool in the order their slabs were filled,
// so seq order is capture order even though decoders finish out of order.

function credentialsFor (cfg: AgentConfig): grpc.ChannelCredentials {
  if (cfg.tls === undefined) return grpc.credentials.createInsecure()
  const read = (p: string | undefined, what: string): Buffer | null => {
    if (p === undefined) return null
    try {
      return readFileSync(p)
    } catch (err) {
      throw new PicketError('PICKET_ERR_CONFIG', `--tls-${what} ${p} cannot be read: ${(err as Error).message}`)
    }
  }
  return grpc.credentials.createSsl(read(cfg.tls.ca, 'ca'), read(cfg.tls.key, 'key'), read(cfg.tls.cert, 'cert'))
}

export async function startAgent (options: AgentOptions): Promise<AgentHandle> {
  const cfg = resolveAgentOptions(options)
  const log: Logger = options.logger ?? createLogger('picket-agent', cfg.logLevel !== undefined ? { level: cfg.logLevel } : {})
  const started = Date.now()
  const cleanups: Array<() => Promise<void> | void> = []
  const cleanup = async (): Promise<void> => {
    for (const f of cleanups.reverse()) {
      try { await f() } catch (err) { log.warn({ err }, 'cleanup step failed') }
    }
    cleanups.length = 0
  }

  try {
    // -- spool first: it owns the seq, and refuses a second agent on the same data
    const spool = Spool.open({ dir: join(cfg.dataDir, 'spool', hostDirName(cfg.hostId)), maxBytes: cfg.spoolMaxBytes, segmentBytes: cfg.spoolSegmentBytes, log })
    cleanups.push(() => { spool.close() })
    const drops = new DropLedger()

    // -- the source
    let probe: NetProbeLike | undefined
    let bootToWall: () => number = synthBootToWallNs
    let rstReasons: Record<number, string> = SYNTH_RST_REASONS
    let noSocketReason = SYNTH_NO_SOCKET_REASON
    let sourceSpec: SourceSpec = { kind: 'synth', synth: cfg.synth }
    if (cfg.source === 'kernel') {
      const bpf = await loadBpf()
      // the agent's own sockets (its gRPC stream) are not telemetry
      const p = bpf.NetProbe.open({ ignoreTgid: process.pid, ...cfg.kernel })
      probe = p
      cleanups.push(() => { p.close() })
      bootToWall = bpf.bootToWallNs
      rstReasons = p.decodeInfo.rstReasons
      noSocketReason = p.decodeInfo.noSocketReason
      sourceSpec = { kind: 'ring', fd: p.ringFd }
    }
    let bootToWallNs = bootToWall()

    // -- decoders
    const pool = SlabPool.create(cfg.slabs, cfg.slabBytes)
    const decoders = new DecoderPool({
      threads: cfg.decoders,
      workerData: {
        rings: { net: pool.data },
        source: { hostId: cfg.hostId, hostname: cfg.hostname, agentVersion: VERSION },
        rstReasons,
        noSocketReason,
        maxBatchBytes: cfg.maxBatchBytes,
        unmapped: cfg.unmapped,
        ...(cfg.testDecoderCrashOnTask !== undefined ? { crash: { onTask: cfg.testDecoderCrashOnTask, counter: new SharedArrayBuffer(4) } } : {}),
      },
      onRetry: (err, attempt) => { log.warn({ err: err.message, attempt }, 'a decoder worker died mid-task; decoding its slab again') },
    })
    cleanups.push(async () => { await decoders.close() })
    await decoders.ready(30_000)

    // -- counters behind stats() and /metrics
    let captured = 0
    let spooledRecords = 0
    let spooledBatches = 0
    let consumerStats: ConsumerStats[] = []
    let kernelCounters: KernelCounters | undefined
    let kernelRecursion = 0
    let lastRate = { at: performance.now(), captured: 0, batches: 0 }
    let recordsPerSecond = 0
    let batchesPerSecond = 0
    let lastStarvationEvents = 0
    let metricsServer: MetricsServer | undefined

    const shipper = new Shipper({
      target: cfg.collector.toString(),
      credentials: credentialsFor(cfg),
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
      capturedTotal: () => captured,
      log,
      onDropped: (cause, count) => { drops.add(cause, count) },
      onAck: (ack, latencyMs) => { if (latencyMs !== undefined) metrics.ackLatency.observe({ status: ack.status }, latencyMs / 1000) },
    })
    cleanups.push(async () => { await shipper.close() })

    // -- slab → decoder → spool, committed in slab order
    let nextTicket = 0
    let nextCommit = 0
    const reorder = new Map<number, DecodeOutput | undefined>()
    const buffers = new BufferPool(cfg.slabs + 8, Math.min(cfg.maxBatchBytes * 2, 16 << 20))
    let slabsInFlight = 0
    let idleWaiters: Array<() => void> = []
    let appendErrorLogged = 0
    let lastAppendAt = Date.now()
    let decodeErrorLogged = 0

    const commit = (out: DecodeOutput | undefined): void => {
      if (out === undefined) return
      if (out.errors > 0) {
        drops.add('decode_error', out.errors)
        if (Date.now() - decodeErrorLogged > 10_000) {
          decodeErrorLogged = Date.now()
          log.warn({ errors: out.errors, firstError: out.firstError, totalSoFar: drops.counters.decode_error }, 'raw records failed to decode (logged at most every 10 s)')
        }
      }
      // the output buffer goes back to the pool once the spool cache lets go of every batch in it
      let refs = out.batches.length
      const release = (): void => { if (--refs === 0) buffers.put(out.buffer) }
      for (const b of out.batches) {
        try {
          spool.append(new Uint8Array(out.buffer, b.offset, b.length), b.count, Date.now(), b.crc, release)
          lastAppendAt = Date.now()
          spooledBatches++
          spooledRecords += b.count
        } catch (err) {
          drops.add('spool_eviction', b.count)
          if (Date.now() - appendErrorLogged > 10_000) { appendErrorLogged = Date.now(); log.error({ err: (err as Error).message }, 'cannot spool a batch; its records are dropped') }
        }
      }
      shipper.notify()
    }
    const complete = (ticket: number, out: DecodeOutput | undefined): void => {
      reorder.set(ticket, out)
      while (reorder.has(nextCommit)) {
        const o = reorder.get(nextCommit)
        reorder.delete(nextCommit)
        nextCommit++
        commit(o)
      }
      if (--slabsInFlight === 0) {
        const w = idleWaiters
        idleWaiters = []
        for (const f of w) f()
      }
    }
    const onSlab = (d: SlabDescriptor): void => {
      const ticket = nextTicket++
      slabsInFlight++
      captured += d.records
      const task: DecodeTask = { ring: d.ring, offset: d.offset, bytes: d.bytes, records: d.records, bootToWallNs }
      // a recycled output buffer for a big slab; a small one gets an exact-size buffer from the worker
      if (d.records >= 256) {
        const out = buffers.take()
        if (out !== undefined) task.out = out
      }
      decoders.decode(task).then(out => {
        consumer.release(d.slab)
        complete(ticket, out)
      }, (err: Error) => {
        consumer.release(d.slab)
        drops.add('decode_error', d.records)
        log.error({ err: err.message, records: d.records }, 'a slab failed to decode on every attempt; its records are dropped')
        complete(ticket, undefined)
      })
    }

    let resolveFatal: (e: Error) => void = () => {}
    const fatal = new Promise<Error>(resolve => { resolveFatal = resolve })
    const consumer = new Consumer({
      ring: 'net',
      source: sourceSpec,
      pool,
      maxRecordBytes: NET_EVENT.SIZEOF,
      tuning: { lingerMs: cfg.lingerMs, drainTimeoutMs: cfg.drainTimeoutMs },
      onSlab,
      onError: err => {
        log.fatal({ err }, 'the consumer thread died; the agent cannot capture')
        resolveFatal(err)
      },
    })
    cleanups.push(async () => { await consumer.terminate() })

    // -- periodic refresh
    /** Poll the consumer and the kernel; `tick`: also the per-interval rates. */
    const refresh = async (tick = false): Promise<void> => {
      try {
        consumerStats = [await consumer.stats()]
      } catch {}
      const starvationEvents = consumerStats.reduce((n, c) => n + c.starvationEvents, 0)
      const starved = consumerStats.some(c => c.starved) || starvationEvents > lastStarvationEvents
      lastStarvationEvents = starvationEvents
      if (probe !== undefined) {
        try {
          kernelCounters = probe.counters()
          kernelRecursion = recursionMisses(probe.progStats())
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'cannot read the kernel counters')
        }
        try { bootToWallNs = bootToWall() } catch {}
      } else {
        kernelCounters = consumerStats[0]?.synthCounters
      }
      if (kernelCounters !== undefined) drops.kernel(reserveFailures(kernelCounters), kernelRecursion, starved)
      if (!tick) return
      const now = performance.now()
      const dt = (now - lastRate.at) / 1000
      if (dt > 0) {
        recordsPerSecond = (captured - lastRate.captured) / dt
        batchesPerSecond = (spooledBatches - lastRate.batches) / dt
      }
      lastRate = { at: now, captured, batches: spooledBatches }
    }
    let refreshing: Promise<void> | undefined
    // A quiet host sends nothing, and would look dead to the backend: a
    // heartbeat is an ordinary batch with no records (a msgpack empty array),
    // spooled and acked like any other, carrying the drop counters.
    const EMPTY_BATCH = new Uint8Array([0x90])
    const heartbeat = (): void => {
      if (cfg.heartbeatMs === 0 || Date.now() - lastAppendAt < cfg.heartbeatMs) return
      try {
        spool.append(EMPTY_BATCH, 0, Date.now())
        lastAppendAt = Date.now()
        shipper.notify()
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'cannot spool a heartbeat')
      }
    }
    const timer = setInterval(() => {
      heartbeat()
      spool.tick()
      if (refreshing === undefined) refreshing = refresh(true).finally(() => { refreshing = undefined })
    }, cfg.statsIntervalMs)
    timer.unref()
    cleanups.push(() => { clearInterval(timer) })

    const snapshot = (): AgentStats => {
      const s: AgentStats = {
        hostId: cfg.hostId,
        hostname: cfg.hostname,
        source: cfg.source,
        uptimeMs: Date.now() - started,
        captured,
        spooledRecords,
        spooledBatches,
        recordsPerSecond,
        batchesPerSecond,
        drops: drops.counters,
        consumers: consumerStats.length > 0 ? consumerStats : [consumer.lastStats],
        decoder: { ...decoders.stats(), reorder: reorder.size },
        shipper: shipper.stats(),
        spool: spool.stats(),
      }
      if (kernelCounters !== undefined) s.kernel = kernelCounters
      if (probe !== undefined) s.kernelRecursionMisses = kernelRecursion
      if (metricsServer !== undefined) s.metricsUrl = metricsServer.url
      return s
    }

    const metrics = createAgentMetrics(snapshot)
    if (cfg.metricsPort !== undefined) {
      metricsServer = await serveMetrics(metrics.registry, cfg.metricsPort, cfg.metricsHost)
      const ms = metricsServer
      cleanups.push(async () => { await ms.close() })
    }

    shipper.start()
    log.info({
      hostId: cfg.hostId, collector: cfg.collector.toString(), source: cfg.source, spool: spool.dir, nextSeq: spool.nextSeq,
      decoders: cfg.decoders, slabs: cfg.slabs, slabBytes: cfg.slabBytes, metrics: metricsServer?.url,
    }, 'agent started')

    let stopping: Promise<AgentStats> | undefined
    const stop = async (): Promise<AgentStats> => {
      stopping ??= (async () => {
        clearInterval(timer)
        await refreshing
        // 1. capture no more; hand off what the rings held
        try {
          consumerStats = [await consumer.stop(Math.max(1000, cfg.shutdownTimeoutMs))]
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'consumer did not stop cleanly')
        }
        // 2. decode and spool every slab in flight
        if (slabsInFlight > 0) await new Promise<void>(resolve => idleWaiters.push(resolve))
        // 3. the last kernel counters, then ship what the window allows
        await refresh()
        const flushed = await shipper.flush(cfg.shutdownTimeoutMs)
        const final = snapshot()
        log.info({
          flushed, captured: final.captured, spooledBatches: final.spooledBatches, ackedBatches: final.shipper.ackedBatches,
          leftInSpool: final.spool.pendingBatches, drops: final.drops,
        }, flushed ? 'agent stopped; every batch was acked' : 'agent stopped; unacked batches stay in the spool for the next start')
        await cleanup()
        return final
      })()
      return await stopping
    }

    return {
      hostId: cfg.hostId,
      get metricsUrl () { return metricsServer?.url },
      stats: async () => {
        if (stopping === undefined) {
          await refreshing
          await refresh()
        }
        return snapshot()
      },
      reconfigure: async t => [await consumer.reconfigure(t)],
      stop,
      fatal,
    }
  } catch (err) {
    await cleanup()
    throw err
  }
}
