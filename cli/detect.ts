import { parseCommand, type HostPort, type OptSpec } from '../shared/config.js'
import { createLogger } from '../shared/logger.js'
import { startDetectNode } from '../backend/cluster/detect-node.js'
import { NATS_SECURITY_OPTIONS, natsSecurity, parseNatsUrls, type NatsSecurityValues } from '../backend/cluster/nats.js'

// picket detect: a detection node in cluster mode, until SIGINT or SIGTERM.

interface Values extends NatsSecurityValues {
  nats: string
  'node-id'?: string
  workers: number
  rules?: string
  http: HostPort
  'no-http': boolean
  'lease-ttl': number
  'detection-memory': number
  'log-level': string
}

const OPTIONS: readonly OptSpec[] = [
  { name: 'nats', type: 'string', required: true, help: 'NATS servers, nats://HOST:PORT[,HOST:PORT...] (the backend\'s --bridge)' },
  { name: 'node-id', type: 'string', help: 'this node\'s name in the lease bucket (default: hostname-pid)' },
  { name: 'workers', type: 'int', default: 1, min: 1, max: 256, help: 'detection worker threads' },
  { name: 'rules', type: 'path', help: 'folder of Sigma-layout *.yml rules (default: the shipped backend/rules; use the backend\'s)' },
  { name: 'http', type: 'hostport', default: '127.0.0.1:9465', help: 'address for /metrics and /healthz' },
  { name: 'no-http', type: 'bool', default: false, help: 'serve no /metrics' },
  { name: 'lease-ttl', type: 'duration', default: '10s', min: 2000, help: 'a partition whose owner stopped renewing its lease for this long goes to another node' },
  { name: 'detection-memory', type: 'bytes', default: '256MiB', min: 1024 * 1024, help: 'memory budget of each worker\'s correlation state' },
  ...NATS_SECURITY_OPTIONS,
  { name: 'log-level', type: 'enum', default: 'info', choices: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'], help: 'log level' },
]

export async function run (argv: string[]): Promise<number> {
  const cfg = parseCommand<Values>(OPTIONS, argv, 'picket detect --nats nats://HOST:PORT[,...] [options]',
    'Run a detection node: take leases on partitions of the batch stream picket backend --bridge publishes,\n' +
    'run the detection rules on them, and publish findings on picket.findings for the backend to store.\n' +
    'Run any number of them; a node that dies hands its partitions over after --lease-ttl.')
  if (cfg === undefined) return 0
  const v = cfg.values
  const logger = createLogger('picket-detect', { level: v['log-level'] })
  const node = await startDetectNode({
    servers: parseNatsUrls(v.nats, '--nats'),
    security: natsSecurity(v),
    ...(v['node-id'] !== undefined ? { nodeId: v['node-id'] } : {}),
    workers: v.workers,
    ...(v.rules !== undefined ? { rulesDir: v.rules } : {}),
    http: v['no-http'] ? false : v.http,
    leaseTtlMs: v['lease-ttl'],
    detectionMemory: v['detection-memory'],
    logger,
  })
  const onRejection = (err: unknown): void => { logger.error({ err }, 'a promise rejection nothing handled (a Picket bug: please report it with this line); the node goes on') }
  process.on('unhandledRejection', onRejection)
  process.stderr.write(`picket detect: node ${node.nodeId}${node.metricsUrl !== undefined ? `, /metrics on ${node.metricsUrl}` : ''}\n`)
  await new Promise<void>(resolve => {
    const stop = (): void => { process.off('SIGINT', stop); process.off('SIGTERM', stop); resolve() }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
  await node.close()
  process.off('unhandledRejection', onRejection)
  logger.flush()
  return 0
}
