import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseCommand, type HostPort } from '../shared/config.js'
import { PicketError } from '../shared/errors.js'
import { createLogger } from '../shared/logger.js'
import { TOKENS_CREDENTIAL } from '../backend/http-tokens.js'
import { BACKEND_OPTIONS } from '../backend/options.js'
import { natsSecurity, parseNatsUrls, type NatsSecurityValues } from '../backend/cluster/nats.js'
import { startBackend } from '../backend/server.js'
import { containUnhandledRejections } from './last-resort.js'

// picket backend: collector, detection plane, alert store, outputs and the
// HTTP server (healthz, metrics, console), until SIGINT or SIGTERM.

interface Values extends NatsSecurityValues {
  listen: HostPort
  'allow-remote': boolean
  'tls-cert'?: string
  'tls-key'?: string
  'tls-client-ca'?: string
  http: HostPort
  console?: HostPort
  'http-tokens-file'?: string
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
  bridge?: string
  partitions: number
  'log-level': string
}

const TOKENS_FILE_HOW = 'put each analyst\'s token in a tokens file, one "TOKEN NAME" line each (chmod 600 FILE), and pass --http-tokens-file FILE (or PICKET_HTTP_TOKENS_FILE)'

/** Tokens come from a file only: argv shows in `ps` to every user of the machine, and one shared token names no analyst. */
function refuseBareTokens (argv: string[], env: NodeJS.ProcessEnv): void {
  if (argv.some(a => a === '--http-token' || a.startsWith('--http-token='))) {
    throw new PicketError('PICKET_ERR_CONFIG', `--http-token is refused: a token on the command line shows in ps to every user of this machine; ${TOKENS_FILE_HOW}`)
  }
  if ((env.PICKET_HTTP_TOKEN ?? '') !== '') {
    throw new PicketError('PICKET_ERR_CONFIG', `PICKET_HTTP_TOKEN is no longer read: one shared token names no analyst for the triage history; ${TOKENS_FILE_HOW}`)
  }
}

/** The tokens systemd hands the service (LoadCredential=picket-http-tokens:…), when there are any. */
function credentialTokensFile (env: NodeJS.ProcessEnv): string | undefined {
  const dir = env.CREDENTIALS_DIRECTORY
  if (dir === undefined || dir === '') return undefined
  const file = join(dir, TOKENS_CREDENTIAL)
  return existsSync(file) ? file : undefined
}

export async function run (argv: string[]): Promise<number> {
  refuseBareTokens(argv, process.env)
  const cfg = parseCommand<Values>(BACKEND_OPTIONS, argv, 'picket backend [options]',
      'Run the collector (gRPC Ship server), the detection workers, the alert store, the outputs and the\n' +
      'HTTP server (/healthz, /metrics and the console). Options come from flags, then PICKET_* environment\n' +
      'variables, then --config FILE. Stop with Ctrl-C (SIGINT) or SIGTERM.')
  if (cfg === undefined) return 0
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
  const tokensFile = v['http-tokens-file'] ?? credentialTokensFile(process.env)
  const logger = createLogger('picket-backend', { level: v['log-level'] })
  const backend = await startBackend({
    listen: v.listen,
    allowRemote: v['allow-remote'],
    ...(v['tls-cert'] !== undefined && v['tls-key'] !== undefined
      ? { tls: { cert: v['tls-cert'], key: v['tls-key'], ...(v['tls-client-ca'] !== undefined ? { clientCa: v['tls-client-ca'] } : {}) } }
      : {}),
    http: v.console ?? v.http,
    ...(tokensFile !== undefined ? { httpTokensFile: tokensFile, credentialsDirectory: process.env.CREDENTIALS_DIRECTORY } : {}),
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
    ...(v.bridge !== undefined ? { bridge: parseNatsUrls(v.bridge, '--bridge'), partitions: v.partitions, natsSecurity: natsSecurity(v) } : {}),
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
