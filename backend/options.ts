import { availableParallelism } from 'node:os'
import { isAbsolute, resolve } from 'node:path'
import type { OptSpec } from '../shared/config.js'
import { parseHostPort, type HostPort } from '../shared/config.js'
import { PicketError } from '../shared/errors.js'
import type { Logger } from '../shared/logger.js'
import { rootPath } from '../shared/paths.js'
import type { RuleTiming } from './detection/rules/compile.js'
import { isLoopback } from '../shared/hostport.js'
import type { HttpAccess } from './http-access.js'
import { HttpTokens, loadHttpTokens, TOKENS_CREDENTIAL } from './http-tokens.js'
import type { HttpPlugin } from './http.js'
import { DEFAULT_DETECTION_MEMORY } from './detection/budget.js'
import { NATS_SECURITY_OPTIONS, type NatsSecurity } from './cluster/nats.js'
import { DEFAULT_LIMITS, DEFAULT_STREAM_LIMITS, validateLimits, validateStreamLimits, type Limits, type StreamLimits } from './limits.js'

// startBackend()'s options, validated once here and frozen. The CLI's flags
// (BACKEND_OPTIONS) map onto them one to one.

export interface BackendOptions {
  /** collector address, HOST:PORT (port 0 picks a free port); default 127.0.0.1:50051 */
  listen?: string | HostPort
  /** allow a non-loopback collector address without mTLS */
  allowRemote?: boolean
  tls?: { cert: string, key: string, clientCa?: string }
  /** HTTP (healthz, metrics, console) address, or false for none; default 127.0.0.1:8080 */
  http?: string | HostPort | false
  /**
   * file of `TOKEN NAME` lines (mode 0600), one access token per analyst:
   * triage needs one, and a non-loopback `http` address needs at least one
   */
  httpTokensFile?: string
  /** requests without a token may read (GET) on a loopback `http` address; default: when there is no token */
  httpAnonymousReads?: boolean
  /** systemd's $CREDENTIALS_DIRECTORY: a tokens file directly in it is the service's credential */
  credentialsDirectory?: string
  /** alert store file; default ./data/picket.db */
  db?: string
  /** detection worker threads; default: the number of cores */
  workers?: number
  /** folder of Sigma-layout *.yml rules; default backend/rules */
  rulesDir?: string
  /** POST every finding's OCSF JSON here */
  webhook?: string
  limits?: Partial<Limits>
  /** caps on Ship streams and connections */
  streams?: Partial<StreamLimits>
  /** memory budget of each detection worker's correlation state, and of the fleet stage's, bytes; default 256 MiB */
  detectionMemory?: number
  /** a host with no batch for this long is let go from every per-host map (its store row stays), ms; default 10 min */
  hostIdleMs?: number
  /** override rule timing (tests use short windows and quiet periods) */
  timing?: RuleTiming
  logger?: Logger
  /** extra HTTP routes, registered before the server listens */
  plugins?: HttpPlugin[]
  /** the console plugin: 'auto' loads backend/console/index when it exists (default), false leaves it out */
  console?: 'auto' | false | HttpPlugin
  /** how often workers emit updates and closes, ms (default 250) */
  tickMs?: number
  /** how often a fleet sighting is refreshed, ms (default 1000) */
  fleetRefreshMs?: number
  /** the detection worker module (default backend/detection/worker); tests pass a wrapper */
  detectionWorker?: URL
  /** cluster mode: publish batches to these NATS servers (nats://HOST:PORT) and run no detection here */
  bridge?: string[]
  /** cluster mode: partitions of a batch stream the backend creates (default 16) */
  partitions?: number
  /** cluster mode: NATS credentials and TLS */
  natsSecurity?: NatsSecurity
}

export interface ResolvedOptions {
  listen: HostPort
  allowRemote: boolean
  tls: { cert: string, key: string, clientCa?: string } | undefined
  http: HostPort | undefined
  httpAccess: HttpAccess
  db: string
  workers: number
  rulesDir: string
  webhook: string | undefined
  limits: Limits
  streams: StreamLimits
  detectionMemory: number
  hostIdleMs: number
  timing: RuleTiming
  plugins: HttpPlugin[]
  console: 'auto' | false | HttpPlugin
  tickMs: number
  fleetRefreshMs: number
  detectionWorker: URL | undefined
  bridge: string[] | undefined
  partitions: number
  natsSecurity: NatsSecurity
}

function hp (v: string | HostPort, name: string, errors: string[]): HostPort | undefined {
  if (typeof v !== 'string') return v
  const r = parseHostPort(v)
  if (r === undefined) errors.push(`${name} '${v}' is not HOST:PORT (examples: 127.0.0.1:50051, [::1]:8080)`)
  return r
}

export function resolveOptions (o: BackendOptions): ResolvedOptions {
  const errors: string[] = []
  const listen = hp(o.listen ?? '127.0.0.1:50051', 'listen', errors)
  const http = o.http === false ? undefined : hp(o.http ?? '127.0.0.1:8080', 'http', errors)
  const workers = o.workers ?? availableParallelism()
  if (!Number.isInteger(workers) || workers < 1 || workers > 256) errors.push('workers must be an integer from 1 to 256')
  const limits = { ...DEFAULT_LIMITS, ...o.limits }
  errors.push(...validateLimits(limits))
  const streams = { ...DEFAULT_STREAM_LIMITS, ...o.streams }
  errors.push(...validateStreamLimits(streams))
  const detectionMemory = o.detectionMemory ?? DEFAULT_DETECTION_MEMORY
  if (!Number.isInteger(detectionMemory) || detectionMemory < 1024 * 1024) errors.push('detectionMemory must be an integer number of bytes, at least 1 MiB')
  const partitions = o.partitions ?? 16
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 1024) errors.push('partitions must be an integer from 1 to 1024')
  const hostIdleMs = o.hostIdleMs ?? 600_000
  if (!(hostIdleMs >= 1000)) errors.push('hostIdleMs must be at least 1000 (ms)')
  if (o.webhook !== undefined) {
    try {
      const u = new URL(o.webhook)
      if (u.protocol !== 'http:' && u.protocol !== 'https:') errors.push(`webhook '${o.webhook}' must be an http:// or https:// URL`)
    } catch {
      errors.push(`webhook '${o.webhook}' is not a URL`)
    }
  }
  if (o.tls !== undefined && (o.tls.cert === '' || o.tls.key === '')) errors.push('tls needs both cert and key')
  for (const [k, v] of Object.entries(o.timing ?? {})) {
    if (v !== undefined && (typeof v !== 'number' || !(v > 0))) errors.push(`timing.${k} must be a positive number of ms`)
  }
  const tickMs = o.tickMs ?? 250
  const fleetRefreshMs = o.fleetRefreshMs ?? 1000
  if (!(tickMs >= 10)) errors.push('tickMs must be at least 10')
  if (!(fleetRefreshMs >= 10)) errors.push('fleetRefreshMs must be at least 10')
  if (o.detectionWorker !== undefined && !(o.detectionWorker instanceof URL)) errors.push('detectionWorker must be a URL of a module')
  if ('httpToken' in o) errors.push('httpToken is not an option: put each analyst\'s token in a tokens file (TOKEN NAME lines, mode 0600) and pass its path as httpTokensFile (--http-tokens-file)')
  const loopback = http === undefined || isLoopback(http.host)
  if (o.httpAnonymousReads === true && !loopback) errors.push(`httpAnonymousReads is for a loopback HTTP address only, not ${http?.toString() ?? ''}`)
  if (errors.length > 0 || listen === undefined) throw new PicketError('PICKET_ERR_CONFIG', errors.join('\n'), { errors })
  const tokens = o.httpTokensFile !== undefined ? loadHttpTokens(o.httpTokensFile, o.credentialsDirectory) : new HttpTokens([])
  if (!loopback && tokens.size === 0) {
    throw new PicketError('PICKET_ERR_CONSOLE_TOKEN', `the HTTP server (console, /metrics, /healthz) would listen on ${http?.toString() ?? ''} without an access token; ` +
      'give --http-tokens-file FILE (one "TOKEN NAME" line per analyst, mode 0600), or listen on 127.0.0.1')
  }
  const db = o.db ?? 'data/picket.db'
  const rulesDir = o.rulesDir ?? rootPath('backend', 'rules')
  return Object.freeze({
    listen,
    allowRemote: o.allowRemote === true,
    tls: o.tls,
    http,
    httpAccess: Object.freeze({ tokens, anonymousReads: o.httpAnonymousReads ?? tokens.size === 0 }),
    db: db === ':memory:' || isAbsolute(db) ? db : resolve(db),
    workers,
    rulesDir: isAbsolute(rulesDir) ? rulesDir : resolve(rulesDir),
    webhook: o.webhook,
    limits: Object.freeze(limits),
    streams: Object.freeze(streams),
    detectionMemory,
    hostIdleMs,
    timing: Object.freeze({ ...o.timing }),
    plugins: o.plugins ?? [],
    console: o.console ?? 'auto',
    tickMs,
    fleetRefreshMs,
    detectionWorker: o.detectionWorker,
    bridge: o.bridge !== undefined && o.bridge.length > 0 ? [...o.bridge] : undefined,
    partitions,
    natsSecurity: { ...o.natsSecurity },
  })
}

/** `picket backend` flags. */
export const BACKEND_OPTIONS: readonly OptSpec[] = [
  { name: 'listen', type: 'hostport', default: '127.0.0.1:50051', help: 'collector (gRPC Ship) address; non-loopback needs mTLS or --allow-remote' },
  { name: 'allow-remote', type: 'bool', default: false, help: 'let the collector listen on a non-loopback address without mTLS (agents are then unauthenticated)' },
  { name: 'tls-cert', type: 'path', help: 'collector TLS certificate (PEM)' },
  { name: 'tls-key', type: 'path', help: 'collector TLS private key (PEM)' },
  { name: 'tls-client-ca', type: 'path', help: 'CA (PEM) that signs agent certificates: turns on mTLS, and an agent may only ship as the host its certificate names' },
  { name: 'http', type: 'hostport', default: '127.0.0.1:8080', help: 'HTTP address for /healthz, /metrics and the console' },
  { name: 'console', type: 'hostport', help: 'same as --http (the console shares the HTTP server)' },
  { name: 'http-tokens-file', type: 'path', help: `access tokens, one "TOKEN NAME" line per analyst (mode 0600); triage needs one, a non-loopback --http at least one (default under systemd: $CREDENTIALS_DIRECTORY/${TOKENS_CREDENTIAL})` },
  { name: 'db', type: 'path', default: 'data/picket.db', help: 'alert store (SQLite) file' },
  { name: 'workers', type: 'int', min: 1, max: 256, help: 'detection worker threads (default: the number of cores)' },
  { name: 'rules', type: 'path', help: 'folder of Sigma-layout *.yml rules (default: the shipped backend/rules)' },
  { name: 'webhook', type: 'string', help: 'POST each finding (OCSF JSON) to this http(s) URL, with retry' },
  { name: 'max-batch-bytes', type: 'bytes', default: String(DEFAULT_LIMITS.maxBatchBytes), min: 1024, help: 'refuse batches whose records and context are larger' },
  { name: 'max-records', type: 'int', default: DEFAULT_LIMITS.maxRecords, min: 1, help: 'refuse batches with more records' },
  { name: 'max-string-bytes', type: 'bytes', default: String(DEFAULT_LIMITS.maxStringBytes), min: 64, help: 'refuse batches holding a longer string' },
  { name: 'max-depth', type: 'int', default: DEFAULT_LIMITS.maxDepth, min: 2, max: 256, help: 'refuse batches whose records nest deeper' },
  { name: 'max-record-age', type: 'duration', default: `${DEFAULT_LIMITS.maxRecordAgeMs / 3_600_000}h`, min: 0, help: 'refuse batches holding a record whose time is further before the collector\'s clock' },
  { name: 'max-record-ahead', type: 'duration', default: `${DEFAULT_LIMITS.maxRecordAheadMs / 60_000}m`, min: 0, help: 'refuse batches holding a record whose time is further after the collector\'s clock' },
  { name: 'max-streams', type: 'int', default: DEFAULT_STREAM_LIMITS.maxStreams, min: 1, help: 'Ship streams open at once; a stream over it is refused with RESOURCE_EXHAUSTED' },
  { name: 'max-connections', type: 'int', default: DEFAULT_STREAM_LIMITS.maxConnections, min: 1, help: 'connections with a Ship stream open; a stream from another connection over it is refused' },
  { name: 'max-streams-per-connection', type: 'int', default: DEFAULT_STREAM_LIMITS.maxStreamsPerConnection, min: 1, help: 'concurrent Ship streams on one connection (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS)' },
  { name: 'detection-memory', type: 'bytes', default: '256MiB', min: 1024 * 1024, help: 'memory budget of each detection worker\'s correlation state (all hosts and rules), and of the fleet stage\'s; least recently active state is evicted past it' },
  { name: 'host-idle-timeout', type: 'duration', default: '10m', min: 1000, help: 'let a host with no batch for this long go from every per-host map (its store row stays)' },
  { name: 'bridge', type: 'string', help: 'cluster mode: publish batches to NATS JetStream at nats://HOST:PORT[,HOST:PORT...] and leave detection to picket detect nodes' },
  { name: 'partitions', type: 'int', default: 16, min: 1, max: 1024, help: 'cluster mode: partitions of the batch stream when the backend creates it (fixed afterwards)' },
  ...NATS_SECURITY_OPTIONS,
  { name: 'log-level', type: 'enum', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], help: 'log level' },
]
