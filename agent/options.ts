import { availableParallelism, hostname } from 'node:os'
import { resolve } from 'node:path'
import { parseHostPort, type HostPort, type OptSpec } from '../shared/config.js'
import { PicketError } from '../shared/errors.js'
import type { SynthOptions } from './decode/synth.js'
import { defaultHostId } from './host-id.js'
import type { NetProbeOptions } from './kernel.js'
import type { AgentOptions } from './types.js'

// The agent's options, validated once. startAgent() takes AgentOptions
// (programmatic callers and tests); `picket agent` maps its flags onto them
// with AGENT_OPTION_SPECS. Past resolveAgentOptions() nothing re-checks.

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

export interface AgentConfig {
  collector: HostPort
  hostId: string
  hostname: string
  dataDir: string
  metricsPort: number | undefined
  metricsHost: string
  source: 'kernel' | 'synth'
  synth: SynthOptions
  kernel: NetProbeOptions
  slabBytes: number
  slabs: number
  lingerMs: number
  drainTimeoutMs: number
  decoders: number
  window: number
  windowBytes: number
  maxBatchBytes: number
  spoolMaxBytes: number
  spoolSegmentBytes: number
  backoffInitialMs: number
  backoffMaxMs: number
  ackTimeoutMs: number
  shutdownTimeoutMs: number
  tls: { ca?: string, cert?: string, key?: string, serverName?: string } | undefined
  unmapped: boolean
  statsIntervalMs: number
  heartbeatMs: number
  logLevel: string | undefined
  testDecoderCrashOnTask: number | undefined
}

function int (errors: string[], name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt
  if (!Number.isInteger(v) || v < min || v > max) errors.push(`options.${name} must be an integer from ${min} to ${max}, got ${String(v)}`)
  return v
}

export function resolveAgentOptions (o: AgentOptions): Readonly<AgentConfig> {
  const errors: string[] = []
  const collector = typeof o.collector === 'string' ? parseHostPort(o.collector) : undefined
  if (collector === undefined) errors.push(`options.collector must be HOST:PORT (example: 127.0.0.1:50051), got ${String(o.collector)}`)
  const hostId = o.hostId ?? defaultHostId()
  if (hostId.length === 0 || hostId.length > 255) errors.push('options.hostId must be 1 to 255 characters')
  const source = o.source ?? 'kernel'
  if (source !== 'kernel' && source !== 'synth') errors.push(`options.source must be 'kernel' or 'synth', got ${String(source)}`)
  const slabBytes = int(errors, 'slabBytes', o.slabBytes, 256 * KiB, 4 * KiB, 64 * MiB)
  const spoolMaxBytes = int(errors, 'spoolMaxBytes', o.spoolMaxBytes, GiB, 64 * KiB, 2 ** 50)
  const spoolSegmentBytes = int(errors, 'spoolSegmentBytes', o.spoolSegmentBytes, Math.min(64 * MiB, Math.floor(spoolMaxBytes / 4)), 4 * KiB, 2 ** 40)
  if (spoolSegmentBytes > spoolMaxBytes / 2) errors.push(`options.spoolSegmentBytes (${spoolSegmentBytes}) must be at most half of options.spoolMaxBytes (${spoolMaxBytes}), so eviction can keep the bound`)
  const backoffInitialMs = int(errors, 'backoffInitialMs', o.backoffInitialMs, 250, 1, 600_000)
  const backoffMaxMs = int(errors, 'backoffMaxMs', o.backoffMaxMs, 30_000, 1, 3_600_000)
  if (backoffMaxMs < backoffInitialMs) errors.push('options.backoffMaxMs must not be below options.backoffInitialMs')
  if (o.metricsPort !== undefined) int(errors, 'metricsPort', o.metricsPort, 0, 0, 65535)
  const synth = o.synth ?? {}
  if (synth.rate !== undefined && (!(synth.rate >= 0) || !Number.isFinite(synth.rate))) errors.push('options.synth.rate must be a number >= 0')
  if (synth.total !== undefined && (!Number.isInteger(synth.total) || synth.total < 0)) errors.push('options.synth.total must be an integer >= 0')
  if (o.tls !== undefined && ((o.tls.cert === undefined) !== (o.tls.key === undefined))) errors.push('options.tls.cert and options.tls.key go together (mTLS needs both)')
  const maxBatchBytes = int(errors, 'maxBatchBytes', o.maxBatchBytes, 3 * MiB, 4 * KiB, 256 * MiB)
  const cfg: AgentConfig = {
    collector: collector as HostPort,
    hostId,
    hostname: o.hostname ?? hostname(),
    dataDir: resolve(o.dataDir ?? 'data'),
    metricsPort: o.metricsPort,
    metricsHost: o.metricsHost ?? '127.0.0.1',
    source,
    synth,
    kernel: o.kernel ?? {},
    slabBytes,
    slabs: int(errors, 'slabs', o.slabs, 16, 2, 4096),
    lingerMs: int(errors, 'lingerMs', o.lingerMs, 10, 0, 60_000),
    drainTimeoutMs: int(errors, 'drainTimeoutMs', o.drainTimeoutMs, 5, 0, 10_000),
    decoders: int(errors, 'decoders', o.decoders, Math.min(4, Math.max(1, availableParallelism() - 1)), 1, 256),
    window: int(errors, 'window', o.window, 32, 1, 100_000),
    windowBytes: int(errors, 'windowBytes', o.windowBytes, 64 * MiB, 4 * KiB, 2 ** 40),
    maxBatchBytes,
    spoolMaxBytes,
    spoolSegmentBytes,
    backoffInitialMs,
    backoffMaxMs,
    ackTimeoutMs: int(errors, 'ackTimeoutMs', o.ackTimeoutMs, 30_000, 100, 3_600_000),
    shutdownTimeoutMs: int(errors, 'shutdownTimeoutMs', o.shutdownTimeoutMs, 5000, 0, 600_000),
    tls: o.tls,
    unmapped: o.unmapped ?? true,
    statsIntervalMs: int(errors, 'statsIntervalMs', o.statsIntervalMs, 1000, 10, 600_000),
    heartbeatMs: int(errors, 'heartbeatMs', o.heartbeatMs, 30_000, 0, 3_600_000),
    logLevel: o.logLevel,
    testDecoderCrashOnTask: o.testDecoderCrashOnTask,
  }
  if (errors.length > 0) throw new PicketError('PICKET_ERR_CONFIG', errors.join('\n'), { errors })
  return Object.freeze(cfg)
}

// ---------------------------------------------------------------------------
// `picket agent` flags (also PICKET_* variables and config file keys).

export const AGENT_OPTION_SPECS: readonly OptSpec[] = [
  { name: 'collector', type: 'hostport', help: 'collector to ship to, HOST:PORT', required: true },
  { name: 'host-id', type: 'string', help: 'host identity sent with every batch (default: /etc/machine-id, else the hostname)' },
  { name: 'hostname', type: 'string', help: 'hostname sent with every batch (default: this host\'s)' },
  { name: 'data', type: 'path', help: 'data folder; the spool lives in DATA/spool/HOST-ID/', default: './data' },
  { name: 'metrics', type: 'int', help: 'serve Prometheus /metrics on this port (0: any free port)', min: 0, max: 65535 },
  { name: 'metrics-host', type: 'string', help: 'address for /metrics', default: '127.0.0.1' },
  { name: 'source', type: 'enum', help: 'capture from the kernel, or generate synthetic records (no root needed)', choices: ['kernel', 'synth'], default: 'kernel' },
  { name: 'synth-rate', type: 'int', help: 'synthetic records per second (0: as fast as the pipeline takes them)', min: 0, default: 1000 },
  { name: 'synth-total', type: 'int', help: 'stop generating after this many synthetic records', min: 0 },
  { name: 'synth-seed', type: 'int', help: 'seed of the synthetic records', default: 1 },
  { name: 'ring-bytes', type: 'bytes', help: 'kernel ring buffer size (a power of 2)', default: '8MiB', min: 4096 },
  { name: 'wakeup-bytes', type: 'bytes', help: 'kernel wakes the consumer once this much waits in the ring' },
  { name: 'slab-bytes', type: 'bytes', help: 'size of one slab (one decoder task)', default: '256KiB', min: 4096, max: 64 * MiB },
  { name: 'slabs', type: 'int', help: 'slabs per ring buffer', default: 16, min: 2, max: 4096 },
  { name: 'linger', type: 'duration', help: 'hand a partly filled slab to the decoders after this long', default: '10ms', min: 0, max: 60_000 },
  { name: 'drain-timeout', type: 'duration', help: 'longest wait in one ring drain', default: '5ms', min: 0, max: 10_000 },
  { name: 'decoders', type: 'int', help: 'decoder threads (default: CPUs - 1, 1 to 4)', min: 1, max: 256 },
  { name: 'window', type: 'int', help: 'batches in flight without an ack', default: 32, min: 1, max: 100_000 },
  { name: 'max-batch-bytes', type: 'bytes', help: 'largest batch sent', default: '3MiB', min: 4096 },
  { name: 'spool-max', type: 'bytes', help: 'bound of the disk spool; past it the oldest segment is evicted (counted as drops)', default: '1GiB', min: 64 * KiB },
  { name: 'spool-segment', type: 'bytes', help: 'spool segment size (default: 64MiB, at most a quarter of --spool-max)' },
  { name: 'backoff-initial', type: 'duration', help: 'first reconnect delay', default: '250ms', min: 1 },
  { name: 'backoff-max', type: 'duration', help: 'longest reconnect delay', default: '30s', min: 1 },
  { name: 'ack-timeout', type: 'duration', help: 'reconnect when a batch in flight gets no ack for this long', default: '30s', min: 100 },
  { name: 'shutdown-timeout', type: 'duration', help: 'on SIGINT/SIGTERM, wait this long for acks of what is in flight (the rest stays spooled)', default: '5s', min: 0 },
  { name: 'tls-ca', type: 'path', help: 'CA certificate (PEM) to verify the collector' },
  { name: 'tls-cert', type: 'path', help: 'client certificate (PEM) for mTLS' },
  { name: 'tls-key', type: 'path', help: 'client key (PEM) for mTLS' },
  { name: 'tls-server-name', type: 'string', help: 'name expected in the collector\'s certificate (default: the host in --collector)' },
  { name: 'heartbeat', type: 'duration', help: 'on a quiet host, send an empty batch (with the drop counters) this often, so the backend knows the host is alive; 0 = never', default: '30s', min: 0, max: 3_600_000 },
  { name: 'stats-interval', type: 'duration', help: 'how often stats, kernel counters and the spool watermark are refreshed', default: '1s', min: 10, max: 600_000 },
  { name: 'unmapped', type: 'bool', help: 'keep raw kernel fields under `unmapped`', default: true },
  { name: 'log-level', type: 'enum', help: 'log level', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], default: 'info' },
]

/** Map parsed `picket agent` values onto AgentOptions. */
export function agentOptionsFromFlags (v: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): AgentOptions {
  const o: AgentOptions = {
    collector: String(v.collector),
    dataDir: v.data as string,
    metricsHost: v['metrics-host'] as string,
    source: v.source as 'kernel' | 'synth',
    slabBytes: v['slab-bytes'] as number,
    slabs: v.slabs as number,
    lingerMs: v.linger as number,
    drainTimeoutMs: v['drain-timeout'] as number,
    window: v.window as number,
    maxBatchBytes: v['max-batch-bytes'] as number,
    spoolMaxBytes: v['spool-max'] as number,
    backoffInitialMs: v['backoff-initial'] as number,
    backoffMaxMs: v['backoff-max'] as number,
    ackTimeoutMs: v['ack-timeout'] as number,
    shutdownTimeoutMs: v['shutdown-timeout'] as number,
    unmapped: v.unmapped as boolean,
    statsIntervalMs: v['stats-interval'] as number,
    heartbeatMs: v.heartbeat as number,
    logLevel: v['log-level'] as string,
    synth: { rate: v['synth-rate'] as number, seed: v['synth-seed'] as number, ...(v['synth-total'] !== undefined ? { total: v['synth-total'] as number } : {}) },
    kernel: { ringBytes: v['ring-bytes'] as number, ...(v['wakeup-bytes'] !== undefined ? { wakeupBytes: v['wakeup-bytes'] as number } : {}) },
  }
  if (v['host-id'] !== undefined) o.hostId = v['host-id'] as string
  if (v.hostname !== undefined) o.hostname = v.hostname as string
  if (v.metrics !== undefined) o.metricsPort = v.metrics as number
  if (v.decoders !== undefined) o.decoders = v.decoders as number
  if (v['spool-segment'] !== undefined) o.spoolSegmentBytes = v['spool-segment'] as number
  if (v['tls-ca'] !== undefined || v['tls-cert'] !== undefined || v['tls-key'] !== undefined || v['tls-server-name'] !== undefined) {
    o.tls = {}
    if (v['tls-ca'] !== undefined) o.tls.ca = v['tls-ca'] as string
    if (v['tls-cert'] !== undefined) o.tls.cert = v['tls-cert'] as string
    if (v['tls-key'] !== undefined) o.tls.key = v['tls-key'] as string
    if (v['tls-server-name'] !== undefined) o.tls.serverName = v['tls-server-name'] as string
  }
  // test-only, deliberately not a documented flag
  const crash = env.PICKET_TEST_DECODER_CRASH_ON_TASK
  if (crash !== undefined && crash !== '') o.testDecoderCrashOnTask = Number(crash)
  return o
}
