import { formatHelp, parseConfig, type HostPort } from '../shared/config.js'
import { PicketError } from '../shared/errors.js'
import { createLogger } from '../shared/logger.js'
import { BACKEND_OPTIONS } from '../backend/options.js'
import { startBackend } from '../backend/server.js'
import { containUnhandledRejections } from './last-resort.js'

// picket backend: collector, detection plane, alert store, outputs and the
// HTTP server (healthz, metrics, console), until SIGINT or SIGTERM.

interface Values {
  listen: HostPort
  'allow-remote': boolean
  'tls-cert'?: string
  'tls-key'?: string
  'tls-client-ca'?: string
  http: HostPort
  console?: HostPort
  'http-token'?: string
  db: string
  workers?: number
  rules?: string
  webhook?: string
  'max-batch-bytes': number
  'max-records': number
  'max-string-bytes': number
  'max-depth': number
  'max-record-age': number
  'max-record-ahead': number
  'max-streams': number
  'max-connections': number
  'max-streams-per-connection': number
  'detection-memory': number
  'host-idle-timeout': number
  'log-level': string
}

export async function run (argv: string[]): Promise<number> {
  const cfg = parseConfig<Values>(BACKEND_OPTIONS, argv)
  if (cfg.help) {
    process.stdout.write(formatHelp('picket backend [options]',
      'Run the collector (gRPC Ship server), the detection workers, the alert store, the outputs and the\n' +
      'HTTP server (/healthz, /metrics and the console). Options come from flags, then PICKET_* environment\n' +
      'variables, then --config FILE. Stop with Ctrl-C (SIGINT) or SIGTERM.', BACKEND_OPTIONS))
    return 0
  }
  const v = cfg.values
  if (v.console !== undefined && cfg.sources.http === 'flag' && v.console.toString() !== v.http.toString()) {
    throw new PicketError('PICKET_ERR_CONFIG', `--console ${v.console.toString()} and --http ${v.http.toString()} disagree; the console shares the HTTP server, give one of them`)
  }
  if ((v['tls-cert'] === undefined) !== (v['tls-key'] === undefined)) {
    throw new PicketError('PICKET_ERR_CONFIG', '--tls-cert and --tls-key go together')
  }
  if (v['tls-client-ca'] !== undefined && v['tls-cert'] === undefined) {
    throw new PicketError('PICKET_ERR_CONFIG', '--tls-client-ca needs --tls-cert and --tls-key (the collector\'s own certificate)')
  }
  const logger = createLogger('picket-backend', { level: v['log-level'] })
  const backend = await startBackend({
    listen: v.listen,
    allowRemote: v['allow-remote'],
    ...(v['tls-cert'] !== undefined && v['tls-key'] !== undefined
      ? { tls: { cert: v['tls-cert'], key: v['tls-key'], ...(v['tls-client-ca'] !== undefined ? { clientCa: v['tls-client-ca'] } : {}) } }
      : {}),
    http: v.console ?? v.http,
    ...(v['http-token'] !== undefined ? { httpToken: v['http-token'] } : {}),
    db: v.db,
    ...(v.workers !== undefined ? { workers: v.workers } : {}),
    ...(v.rules !== undefined ? { rulesDir: v.rules } : {}),
    ...(v.webhook !== undefined ? { webhook: v.webhook } : {}),
    limits: {
      maxBatchBytes: v['max-batch-bytes'],
      maxRecords: v['max-records'],
      maxStringBytes: v['max-string-bytes'],
      maxDepth: v['max-depth'],
      maxRecordAgeMs: Math.round(v['max-record-age']),
      maxRecordAheadMs: Math.round(v['max-record-ahead']),
    },
    streams: { maxStreams: v['max-streams'], maxConnections: v['max-connections'], maxStreamsPerConnection: v['max-streams-per-connection'] },
    detectionMemory: v['detection-memory'],
    hostIdleMs: v['host-idle-timeout'],
    logger,
  })
  const uncontain = containUnhandledRejections(backend, logger)
  process.stderr.write(`picket backend: collector on ${backend.collector.address}, ${backend.http !== undefined ? `console and /metrics on ${backend.http.url}, ` : ''}store ${backend.options.db}\n`)
  await new Promise<void>(resolve => {
    const stop = (sig: string): void => {
      logger.info({ signal: sig }, 'stopping')
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      resolve()
    }
    const onInt = (): void => stop('SIGINT')
    const onTerm = (): void => stop('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
  })
  await backend.close()
  uncontain()
  logger.flush()
  return 0
}
