import type { KernelCounters } from '../bpf/types.js'
import type { ProcTableCounters } from './proctable/table.js'
import type { Logger } from '../shared/logger.js'
import type { DropCounters } from '../shared/proto/index.js'
import type { SynthOptions } from './source/synth.js'
import type { NetProbeOptions } from './source/kernel.js'
import type { ConsumerStats, ConsumerTuning } from './protocol.js'
import type { ShipperStats } from './ship/shipper.js'
import type { SpoolStats } from './ship/spool.js'

// The agent's public API: what startAgent() takes and returns.

export interface AgentOptions {
  /** the collector, HOST:PORT */
  collector: string
  /** default: /etc/machine-id, else the hostname */
  hostId?: string
  /** default: os.hostname() */
  hostname?: string
  /** data folder; the spool lives in <dataDir>/spool/<host id>/ (default ./data) */
  dataDir?: string
  /** serve Prometheus /metrics on this port (0: any free port; unset: no server) */
  metricsPort?: number
  /** default 127.0.0.1 */
  metricsHost?: string
  /** where records come from: the kernel (default) or the seeded generator */
  source?: 'kernel' | 'synth'
  /** OCSF classes to capture: 'all' (default: every class this build probes and normalises) or a comma-separated list, e.g. 'network,process' */
  classes?: string
  synth?: SynthOptions
  kernel?: NetProbeOptions
  /** bytes per slab (default 256 KiB: ~2,500 network records per decoder task) */
  slabBytes?: number
  /** slabs per ring (default 16) */
  slabs?: number
  /** hand a partly filled slab to the decoders after this long (default 10 ms) */
  lingerMs?: number
  /** longest wait in one ring drain call (default 5 ms) */
  drainTimeoutMs?: number
  /** decoder threads (default: CPUs - 1, at least 1, at most 4) */
  decoders?: number
  /** batches in flight without an ack (default 32) */
  window?: number
  /** bytes in flight without an ack (default 64 MiB) */
  windowBytes?: number
  /** largest batch sent (default 3 MiB; gRPC servers refuse 4 MiB by default) */
  maxBatchBytes?: number
  /** spool bound (default 1 GiB) */
  spoolMaxBytes?: number
  /** spool segment size (default 64 MiB, at most a quarter of the bound) */
  spoolSegmentBytes?: number
  backoffInitialMs?: number
  backoffMaxMs?: number
  /** reconnect when the oldest batch in flight has had no ack for this long (default 30 s) */
  ackTimeoutMs?: number
  /** how long stop() waits for acks of what is in flight (default 5 s) */
  shutdownTimeoutMs?: number
  /**
   * TLS to the collector: file paths (PEM); ca alone = server auth, cert+key
   * = mTLS (the collector then takes the host id from the certificate).
   * serverName: the name to expect in the collector's certificate, when it
   * is not the name in `collector`.
   */
  tls?: { ca?: string, cert?: string, key?: string, serverName?: string }
  /** keep raw kernel fields under `unmapped` (default true) */
  unmapped?: boolean
  /** how often stats, kernel counters and the spool watermark are refreshed (default 1000 ms) */
  statsIntervalMs?: number
  /** on a quiet host, spool an empty batch (count 0, drop counters attached) this often; 0 = never (default 30 s) */
  heartbeatMs?: number
  logger?: Logger
  logLevel?: string
  /** the decoder worker module (default agent/decode-pool/worker); tests pass a wrapper */
  decodeWorker?: URL
}

export interface AgentStats {
  hostId: string
  hostname: string
  source: 'kernel' | 'synth'
  uptimeMs: number
  /** records copied out of the rings */
  captured: number
  /** OCSF records decoded and written to the spool */
  spooledRecords: number
  spooledBatches: number
  /** records and batches per second over the last stats interval */
  recordsPerSecond: number
  batchesPerSecond: number
  drops: DropCounters
  consumers: ConsumerStats[]
  decoder: { pending: number, queued: number, threads: number, completed: number, utilization: number, retries: number, failed: number, reorder: number }
  shipper: ShipperStats
  spool: SpoolStats
  kernel?: KernelCounters
  kernelRecursionMisses?: number
  /** records each ring lost in the kernel (full ring), by ring name ('net', 'proc', 'file') */
  ringDrops: Record<string, number>
  /** records each ring's programs matched (emitted or lost), by ring name; empty for the synthetic source */
  ringEvents: Record<string, number>
  /** the process table's counters (agent/proctable), when the process class is captured */
  procTable?: ProcTableCounters
  metricsUrl?: string
}

export interface AgentHandle {
  readonly hostId: string
  /** http://HOST:PORT/metrics when a metrics port was given */
  readonly metricsUrl: string | undefined
  /** Fresh statistics (asks the consumer threads). */
  stats: () => Promise<AgentStats>
  /** Change consumer tuning on the fly. */
  reconfigure: (t: Partial<ConsumerTuning>) => Promise<ConsumerTuning[]>
  /**
   * Stop capturing, decode and spool what was captured, wait up to
   * shutdownTimeoutMs for the collector's acks (what is not acked stays in
   * the spool for the next start), and release everything.
   */
  stop: () => Promise<AgentStats>
  /** Resolves with the error if the agent fails on its own (a consumer thread died). */
  readonly fatal: Promise<Error>
}
