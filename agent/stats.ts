import type { KernelCounters } from '../bpf/types.js'
import type { Logger } from '../shared/logger.js'
import type { SlabCommit } from './commit.js'
import type { Consumer } from './consumer/host.js'
import { ProcTableReader, type ProcTableCounters, type ProcTableShape } from './proctable/table.js'
import type { DecoderPool } from './decode-pool/pool.js'
import type { DropLedger } from './drops.js'
import type { AgentConfig } from './options.js'
import type { ConsumerStats } from './protocol.js'
import type { Shipper } from './ship/shipper.js'
import type { Spool } from './ship/spool.js'
import type { Capture } from './source/index.js'
import type { AgentStats } from './types.js'

// The agent's statistics: polled from the consumer thread and the source
// (the kernel's counters, which also feed the drop ledger), per-interval
// rates, and the snapshot behind stats() and /metrics.

export interface StatsOptions {
  cfg: Pick<AgentConfig, 'hostId' | 'hostname' | 'source'>
  started: number
  consumers: readonly Consumer[]
  capture: Capture
  procTable?: ProcTableShape
  drops: DropLedger
  commit: SlabCommit
  decoders: DecoderPool
  shipper: Shipper
  spool: Spool
  log: Logger
  metricsUrl: () => string | undefined
}

export class AgentStatsRefresher {
  /** the consumer threads' last stats */
  consumers: ConsumerStats[] = []
  /** CLOCK_REALTIME - the records' boot clock, read again at every refresh */
  bootToWallNs: number
  readonly #o: StatsOptions
  #kernel: KernelCounters | undefined
  #recursion = 0
  #lastRate: { at: number, captured: number, batches: number }
  #recordsPerSecond = 0
  #batchesPerSecond = 0
  #lastStarvationEvents = 0
  #refreshing: Promise<void> | undefined
  readonly #procs: ProcTableReader | undefined
  #ringDrops: Record<string, number> = {}
  #ringEvents: Record<string, number> = {}

  constructor (o: StatsOptions) {
    this.#o = o
    this.#procs = o.procTable !== undefined ? new ProcTableReader(o.procTable) : undefined
    this.bootToWallNs = o.capture.bootToWallNs()
    this.#lastRate = { at: performance.now(), captured: 0, batches: 0 }
  }

  /** Poll the consumer and the source; `rates`: also the per-interval rates. */
  async refresh (rates = false): Promise<void> {
    const { consumers, capture, drops, commit, log } = this.#o
    try {
      this.consumers = await Promise.all(consumers.map(async c => await c.stats()))
    } catch {}
    const starvationEvents = this.consumers.reduce((n, c) => n + c.starvationEvents, 0)
    const starved = this.consumers.some(c => c.starved) || starvationEvents > this.#lastStarvationEvents
    this.#lastStarvationEvents = starvationEvents
    try {
      this.#kernel = capture.counters(this.consumers)
      if (capture.recursionMisses !== undefined) this.#recursion = capture.recursionMisses()
      for (const r of capture.rings) {
        this.#ringDrops[r.name] = r.drops()
        if (r.events !== undefined) this.#ringEvents[r.name] = r.events()
      }
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot read the kernel counters')
    }
    try { this.bootToWallNs = capture.bootToWallNs() } catch {}
    // every ring's reservation failures: kernel_reserve, or slab_starvation when a consumer was starved
    if (this.#kernel !== undefined || this.#o.cfg.source === 'kernel') drops.kernel(Object.values(this.#ringDrops).reduce((a, b) => a + b, 0), this.#recursion, starved)
    if (!rates) return
    const now = performance.now()
    const dt = (now - this.#lastRate.at) / 1000
    if (dt > 0) {
      this.#recordsPerSecond = (commit.captured - this.#lastRate.captured) / dt
      this.#batchesPerSecond = (commit.spooledBatches - this.#lastRate.batches) / dt
    }
    this.#lastRate = { at: now, captured: commit.captured, batches: commit.spooledBatches }
  }

  /** The periodic refresh, with rates; skipped while one is still running. */
  tick (): void {
    if (this.#refreshing === undefined) this.#refreshing = this.refresh(true).finally(() => { this.#refreshing = undefined })
  }

  /** Resolves once the periodic refresh in progress, if any, is done. */
  async settled (): Promise<void> {
    await this.#refreshing
  }

  snapshot (): AgentStats {
    const { cfg, started, consumers, capture, drops, commit, decoders, shipper, spool } = this.#o
    const s: AgentStats = {
      hostId: cfg.hostId,
      hostname: cfg.hostname,
      source: cfg.source,
      uptimeMs: Date.now() - started,
      captured: commit.captured,
      spooledRecords: commit.spooledRecords,
      spooledBatches: commit.spooledBatches,
      recordsPerSecond: this.#recordsPerSecond,
      batchesPerSecond: this.#batchesPerSecond,
      drops: drops.counters,
      consumers: this.consumers.length > 0 ? this.consumers : consumers.map(c => c.lastStats),
      ringDrops: { ...this.#ringDrops },
      ringEvents: { ...this.#ringEvents },
      decoder: { ...decoders.stats(), reorder: commit.reorder },
      shipper: shipper.stats(),
      spool: spool.stats(),
    }
    if (this.#kernel !== undefined) s.kernel = this.#kernel
    if (capture.recursionMisses !== undefined) s.kernelRecursionMisses = this.#recursion
    if (this.#procs !== undefined) s.procTable = this.#procs.counters()
    const url = this.#o.metricsUrl()
    if (url !== undefined) s.metricsUrl = url
    return s
  }
}
