import { availableParallelism, hostname } from 'node:os'
import { resolve } from 'node:path'
import { parseHostPort, type HostPort, type OptSpec, type OptType } from '../shared/config.js'
import { PicketError } from '../shared/errors.js'
import { checkHostId } from '../shared/host-id.js'
import { defaultHostId } from './host-id.js'
import { REGISTRY } from './normalize/registry.js'
import { PROBED_CLASSES, type NetProbeOptions } from './source/kernel.js'
import type { SynthOptions } from './source/synth.js'
import type { AgentOptions } from './types.js'

// The agent's options, validated once. One table says, for each option, its
// `picket agent` flag, where it lives in AgentOptions, its type, default,
// range and help: AGENT_OPTION_SPECS (the flags, PICKET_* variables and
// config file keys) and resolveAgentOptions() (startAgent's validation) are
// both read from it. Past resolveAgentOptions() nothing re-checks.

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
  /** the OCSF classes to capture: 'all' or a comma-separated list (enabledClasses) */
  classes: string
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
  decodeWorker: URL | undefined
}

/** The classes this build both probes and normalises, in registry order. */
export const CAPTURABLE: readonly string[] = REGISTRY.normalisers.map(n => n.name).filter(n => PROBED_CLASSES.includes(n))

type Scalar = string | number | boolean

interface AgentOption {
  /** `picket agent --FLAG`, also PICKET_FLAG and the config file key; none: startAgent() only */
  flag?: string
  /**
   * Where the value goes in AgentOptions and AgentConfig. `synth.*`,
   * `kernel.*` and `tls.*` are handed on as given: the source and the
   * credentials own their defaults.
   */
  key: string
  type: OptType
  help: string
  /** the value when none is given; a function: worked out from the options resolved before it */
  default?: Scalar | ((cfg: Record<string, unknown>) => Scalar)
  /** the flag's default, where it differs from startAgent()'s */
  flagDefault?: Scalar
  min?: number
  max?: number
  /** a number that need not be an integer */
  fractional?: true
  choices?: readonly string[]
  required?: true
}

export const AGENT_OPTIONS: readonly AgentOption[] = [
  { flag: 'collector', key: 'collector', type: 'hostport', help: 'collector to ship to, HOST:PORT', required: true },
  { flag: 'host-id', key: 'hostId', type: 'string', help: 'host identity sent with every batch (default: /etc/machine-id, else the hostname)', default: defaultHostId },
  { flag: 'hostname', key: 'hostname', type: 'string', help: 'hostname sent with every batch (default: this host\'s)', default: hostname },
  { flag: 'data', key: 'dataDir', type: 'path', help: 'data folder; the spool lives in DATA/spool/HOST-ID/', default: './data' },
  { flag: 'metrics', key: 'metricsPort', type: 'int', help: 'serve Prometheus /metrics on this port (0: any free port)', min: 0, max: 65535 },
  { flag: 'metrics-host', key: 'metricsHost', type: 'string', help: 'address for /metrics', default: '127.0.0.1' },
  { flag: 'class', key: 'classes', type: 'string', help: `OCSF classes to capture, each with its own ring and consumer thread: all (${CAPTURABLE.join(', ')}) or a comma-separated list; the synthetic source makes network records only`, default: 'all' },
  { flag: 'source', key: 'source', type: 'enum', help: 'capture from the kernel, or generate synthetic records (no root needed)', choices: ['kernel', 'synth'], default: 'kernel' },
  // startAgent() floods (rate 0) unless told otherwise; an operator trying the agent out gets a trickle
  { flag: 'synth-rate', key: 'synth.rate', type: 'int', help: 'synthetic records per second (0: as fast as the pipeline takes them)', min: 0, fractional: true, flagDefault: 1000 },
  { flag: 'synth-total', key: 'synth.total', type: 'int', help: 'stop generating after this many synthetic records', min: 0 },
  { flag: 'synth-seed', key: 'synth.seed', type: 'int', help: 'seed of the synthetic records', flagDefault: 1 },
  { flag: 'ring-bytes', key: 'kernel.ringBytes', type: 'bytes', help: 'kernel ring buffer size (a power of 2)', flagDefault: 8 * MiB, min: 4096 },
  { flag: 'fold-window', key: 'kernel.foldWindowMs', type: 'duration', help: 'fold repeats of a network flow within this window into one record with a count (the first still goes out at once); 0 = off', flagDefault: 1000, min: 0, max: 60_000 },
  { flag: 'wakeup-bytes', key: 'kernel.wakeupBytes', type: 'bytes', help: 'kernel wakes the consumer once this much waits in the ring' },
  { flag: 'slab-bytes', key: 'slabBytes', type: 'bytes', help: 'size of one slab (one decoder task)', default: 256 * KiB, min: 4 * KiB, max: 64 * MiB },
  { flag: 'slabs', key: 'slabs', type: 'int', help: 'slabs per ring buffer', default: 16, min: 2, max: 4096 },
  { flag: 'linger', key: 'lingerMs', type: 'duration', help: 'hand a partly filled slab to the decoders after this long', default: 10, min: 0, max: 60_000 },
  { flag: 'drain-timeout', key: 'drainTimeoutMs', type: 'duration', help: 'longest wait in one ring drain', default: 5, min: 0, max: 10_000 },
  { flag: 'decoders', key: 'decoders', type: 'int', help: 'decoder threads (default: CPUs - 1, 1 to 4)', default: () => Math.min(4, Math.max(1, availableParallelism() - 1)), min: 1, max: 256 },
  { flag: 'window', key: 'window', type: 'int', help: 'batches in flight without an ack', default: 32, min: 1, max: 100_000 },
  { key: 'windowBytes', type: 'bytes', help: 'bytes in flight without an ack', default: 64 * MiB, min: 4 * KiB, max: 2 ** 40 },
  { flag: 'max-batch-bytes', key: 'maxBatchBytes', type: 'bytes', help: 'largest batch sent', default: 3 * MiB, min: 4 * KiB, max: 256 * MiB },
  { flag: 'spool-max', key: 'spoolMaxBytes', type: 'bytes', help: 'bound of the disk spool; past it the oldest segment is evicted (counted as drops)', default: GiB, min: 64 * KiB, max: 2 ** 50 },
  { flag: 'spool-segment', key: 'spoolSegmentBytes', type: 'bytes', help: 'spool segment size (default: 64MiB, at most a quarter of --spool-max)', default: c => Math.min(64 * MiB, Math.floor(c.spoolMaxBytes as number / 4)), min: 4 * KiB, max: 2 ** 40 },
  { flag: 'backoff-initial', key: 'backoffInitialMs', type: 'duration', help: 'first reconnect delay', default: 250, min: 1, max: 600_000 },
  { flag: 'backoff-max', key: 'backoffMaxMs', type: 'duration', help: 'longest reconnect delay', default: 30_000, min: 1, max: 3_600_000 },
  { flag: 'ack-timeout', key: 'ackTimeoutMs', type: 'duration', help: 'reconnect when a batch in flight gets no ack for this long', default: 30_000, min: 100, max: 3_600_000 },
  { flag: 'shutdown-timeout', key: 'shutdownTimeoutMs', type: 'duration', help: 'on SIGINT/SIGTERM, wait this long for acks of what is in flight (the rest stays spooled)', default: 5000, min: 0, max: 600_000 },
  { flag: 'tls-ca', key: 'tls.ca', type: 'path', help: 'CA certificate (PEM) to verify the collector' },
  { flag: 'tls-cert', key: 'tls.cert', type: 'path', help: 'client certificate (PEM) for mTLS' },
  { flag: 'tls-key', key: 'tls.key', type: 'path', help: 'client key (PEM) for mTLS' },
  { flag: 'tls-server-name', key: 'tls.serverName', type: 'string', help: 'name expected in the collector\'s certificate (default: the host in --collector)' },
  { flag: 'heartbeat', key: 'heartbeatMs', type: 'duration', help: 'on a quiet host, send an empty batch (with the drop counters) this often, so the backend knows the host is alive; 0 = never', default: 30_000, min: 0, max: 3_600_000 },
  { flag: 'stats-interval', key: 'statsIntervalMs', type: 'duration', help: 'how often stats, kernel counters and the spool watermark are refreshed', default: 1000, min: 10, max: 600_000 },
  { flag: 'unmapped', key: 'unmapped', type: 'bool', help: 'keep raw kernel fields under `unmapped`', default: true },
  // unset, the logger reads PICKET_LOG_LEVEL itself
  { flag: 'log-level', key: 'logLevel', type: 'enum', help: 'log level', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'], flagDefault: 'info' },
]

/** The classes a --class value names ('all', or a comma-separated list), in registry order. */
export function enabledClasses (spec: string): string[] {
  if (spec.trim() === 'all') return [...CAPTURABLE]
  const want = new Set(spec.split(',').map(s => s.trim()).filter(s => s !== ''))
  return CAPTURABLE.filter(c => want.has(c))
}

function classProblem (spec: unknown): string | undefined {
  if (typeof spec !== 'string') return `options.classes must be a string, got ${String(spec)}`
  if (spec.trim() === 'all') return undefined
  const names = spec.split(',').map(s => s.trim()).filter(s => s !== '')
  const bad = names.filter(n => !CAPTURABLE.includes(n))
  if (names.length === 0 || bad.length > 0) return `options.classes: ${bad.length > 0 ? bad.join(', ') + ' cannot be captured by this build' : 'no class named'}; it captures ${CAPTURABLE.join(', ')} (or all)`
  return undefined
}

/** A default as a person writes it on the command line: 256KiB, 10ms, 30s. */
function flagText (type: OptType, v: Scalar): Scalar {
  if (typeof v !== 'number') return v
  if (type === 'bytes') {
    for (const [unit, n] of [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]] as const) if (v >= n && v % n === 0) return `${v / n}${unit}`
    return v
  }
  if (type === 'duration') return v >= 1000 && v % 1000 === 0 ? `${v / 1000}s` : `${v}ms`
  return v
}

export const AGENT_OPTION_SPECS: readonly OptSpec[] = AGENT_OPTIONS.flatMap(o => {
  if (o.flag === undefined) return []
  const dflt = o.flagDefault ?? (typeof o.default === 'function' ? undefined : o.default)
  const spec: OptSpec = { name: o.flag, type: o.type, help: o.help }
  if (dflt !== undefined) spec.default = flagText(o.type, dflt)
  if (o.min !== undefined) spec.min = o.min
  if (o.max !== undefined) spec.max = o.max
  if (o.choices !== undefined) spec.choices = o.choices
  if (o.required === true) spec.required = true
  return [spec]
})

/** The value at `key` (`a` or `a.b`) of an options object. */
function at (obj: object, key: string): unknown {
  let v: unknown = obj
  for (const k of key.split('.')) v = (v as Record<string, unknown> | undefined)?.[k]
  return v
}

/** Why `v` is not a valid value of option `o`, or undefined if it is. */
function invalid (o: AgentOption, v: unknown): string | undefined {
  if (v === undefined) return undefined
  if (o.type === 'int' || o.type === 'bytes' || o.type === 'duration') {
    if (o.min === undefined && o.max === undefined) return undefined
    const n = v as number
    const ok = typeof n === 'number' && (o.fractional === true ? Number.isFinite(n) : Number.isInteger(n)) && n >= (o.min ?? -Infinity) && n <= (o.max ?? Infinity)
    if (ok) return undefined
    const what = o.fractional === true ? 'a number' : 'an integer'
    const range = o.max === undefined ? `>= ${o.min}` : `from ${o.min} to ${o.max}`
    return `options.${o.key} must be ${what} ${range}, got ${String(v)}`
  }
  if (o.choices !== undefined && !o.choices.includes(v as string)) return `options.${o.key} must be one of ${o.choices.map(c => `'${c}'`).join(', ')}, got ${String(v)}`
  return undefined
}

export function resolveAgentOptions (given: AgentOptions): Readonly<AgentConfig> {
  const errors: string[] = []
  const collector = typeof given.collector === 'string' ? parseHostPort(given.collector) : undefined
  if (collector === undefined) errors.push(`options.collector must be HOST:PORT (example: 127.0.0.1:50051), got ${String(given.collector)}`)
  const cfg: Record<string, unknown> = {}
  for (const o of AGENT_OPTIONS) {
    let v = at(given, o.key)
    if (v === undefined && !o.key.includes('.') && o.default !== undefined) v = typeof o.default === 'function' ? o.default(cfg) : o.default
    const why = invalid(o, v)
    if (why !== undefined) errors.push(why)
    if (!o.key.includes('.')) cfg[o.key] = v
  }
  const c = cfg as unknown as AgentConfig
  // the collector's own rule: an id it refuses would get every batch refused
  const badHostId = checkHostId(c.hostId)
  if (badHostId !== undefined) errors.push(`options.hostId: ${badHostId}`)
  if (c.spoolSegmentBytes > c.spoolMaxBytes / 2) errors.push(`options.spoolSegmentBytes (${c.spoolSegmentBytes}) must be at most half of options.spoolMaxBytes (${c.spoolMaxBytes}), so eviction can keep the bound`)
  const badClass = classProblem(c.classes)
  if (badClass !== undefined) errors.push(badClass)
  if (c.backoffMaxMs < c.backoffInitialMs) errors.push('options.backoffMaxMs must not be below options.backoffInitialMs')
  if (given.tls !== undefined && ((given.tls.cert === undefined) !== (given.tls.key === undefined))) errors.push('options.tls.cert and options.tls.key go together (mTLS needs both)')
  if (errors.length > 0) throw new PicketError('PICKET_ERR_CONFIG', errors.join('\n'), { errors })
  return Object.freeze({
    ...c,
    collector: collector as HostPort,
    dataDir: resolve(c.dataDir),
    synth: given.synth ?? {},
    kernel: given.kernel ?? {},
    tls: given.tls,
    decodeWorker: given.decodeWorker,
  })
}

/** Map parsed `picket agent` values onto AgentOptions. */
export function agentOptionsFromFlags (values: Record<string, unknown>): AgentOptions {
  const out: Record<string, unknown> = {}
  for (const o of AGENT_OPTIONS) {
    const v = o.flag === undefined ? undefined : values[o.flag]
    if (v === undefined) continue
    const path = o.key.split('.')
    let obj = out
    for (const k of path.slice(0, -1)) obj = (obj[k] ??= {}) as Record<string, unknown>
    obj[path[path.length - 1]] = o.type === 'hostport' ? String(v) : v
  }
  return out as unknown as AgentOptions
}
