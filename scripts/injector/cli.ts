import { parseCommand, type HostPort, type OptSpec } from '../../shared/config.js'
import { PicketError } from '../../shared/errors.js'
import { injectScan, formatSummary } from './index.js'

// picket inject-scan: ship deterministic scan-shaped records to a collector,
// as an agent would.

const SPECS: readonly OptSpec[] = [
  { name: 'collector', type: 'hostport', default: '127.0.0.1:50051', env: 'PICKET_COLLECTOR', help: 'collector address' },
  { name: 'host-id', type: 'string', default: 'inject-host', env: false, help: 'host id of the scanned host (with --hosts N: <id>-0001 ...)' },
  { name: 'hostname', type: 'string', env: false, help: 'hostname the records and batches carry (default: the host id)' },
  { name: 'source', type: 'string', default: '198.51.100.7', env: false, help: 'scanning source IP (with --sources N: the next N-1 addresses too)' },
  { name: 'ports', type: 'int', min: 0, max: 65535, env: false, help: 'distinct ports probed per host (default 200; 1 with --hosts > 1)' },
  { name: 'hosts', type: 'int', default: 1, min: 1, max: 100_000, env: false, help: 'hosts probed: more than 1 makes a sweep' },
  { name: 'sources', type: 'int', default: 1, min: 1, max: 65_536, env: false, help: 'sources sharing the ports: 8 or more, each under 15 ports, make a distributed scan' },
  { name: 'benign', type: 'int', default: 0, min: 0, env: false, help: 'benign records mixed in: many clients connecting to a few open ports' },
  { name: 'udp', type: 'bool', default: false, env: false, help: 'probe UDP ports (refusals are ICMP port unreachable)' },
  { name: 'rate', type: 'int', default: 0, min: 0, env: false, help: 'records per second (0: as fast as the collector acks)' },
  { name: 'seed', type: 'int', default: 1, env: false, help: 'PRNG seed: the same seed sends the same records' },
  { name: 'start-time', type: 'int', min: 0, env: false, help: 'timestamp of the first record, ms since the epoch (default: now)' },
  { name: 'batch', type: 'int', default: 500, min: 1, env: false, help: 'records per batch' },
  { name: 'wire', type: 'enum', choices: ['lean', 'full'], default: 'lean', env: false, help: 'lean: a context and shaped records, as agents send them; full: full OCSF maps, as agents before the lean form did' },
  { name: 'window', type: 'int', default: 32, min: 1, env: false, help: 'batches in flight per host stream' },
  { name: 'start-seq', type: 'int', default: 1, min: 1, env: false, help: 'first seq of each host stream (a fresh agent starts at 1)' },
  { name: 'json', type: 'bool', default: false, env: false, help: 'print the summary as JSON' },
  { name: 'tls-ca', type: 'path', env: 'PICKET_TLS_CA', help: 'CA (PEM) of the collector certificate' },
  { name: 'tls-cert', type: 'path', env: 'PICKET_TLS_CERT', help: 'client certificate (PEM) for mTLS' },
  { name: 'tls-key', type: 'path', env: 'PICKET_TLS_KEY', help: 'client key (PEM) for mTLS' },
]

interface Values {
  collector: HostPort
  'host-id': string
  hostname?: string
  source: string
  ports?: number
  hosts: number
  sources: number
  benign: number
  udp: boolean
  rate: number
  seed: number
  'start-time'?: number
  batch: number
  wire: 'lean' | 'full'
  window: number
  'start-seq': number
  json: boolean
  'tls-ca'?: string
  'tls-cert'?: string
  'tls-key'?: string
}

export async function run (argv: string[]): Promise<number> {
  const cfg = parseCommand<Values>(SPECS, argv, 'picket inject-scan [options]',
      'Ship deterministic, seeded network_activity records to a collector as an agent would (gRPC Ship\n' +
      'stream, seq from 1, msgpack batches, waiting for acks). Patterns: a port scan (--ports), a sweep\n' +
      '(--hosts), a distributed scan (--sources), and benign background traffic (--benign).\n\n' +
      'examples:\n' +
      '  picket inject-scan --ports 200                       one source scans 200 ports: one T1046 finding\n' +
      '  picket inject-scan --hosts 30 --host-id web          one source, port 22 on 30 hosts: a sweep\n' +
      '  picket inject-scan --sources 10 --ports 40           10 sources, 4 ports each: a distributed scan\n' +
      '  picket inject-scan --ports 0 --benign 5000           benign traffic only: no finding')
  if (cfg === undefined) return 0
  const v = cfg.values
  const tls = v['tls-ca'] !== undefined || v['tls-cert'] !== undefined
    ? { ...(v['tls-ca'] !== undefined ? { ca: v['tls-ca'] } : {}), ...(v['tls-cert'] !== undefined ? { cert: v['tls-cert'] } : {}), ...(v['tls-key'] !== undefined ? { key: v['tls-key'] } : {}) }
    : undefined
  const summary = await injectScan({
    collector: v.collector.toString(),
    hostId: v['host-id'],
    ...(v.hostname !== undefined ? { hostname: v.hostname } : {}),
    source: v.source,
    ...(v.ports !== undefined ? { ports: v.ports } : {}),
    hosts: v.hosts,
    sources: v.sources,
    benign: v.benign,
    udp: v.udp,
    rate: v.rate,
    seed: v.seed,
    ...(v['start-time'] !== undefined ? { startTime: v['start-time'] } : {}),
    batchSize: v.batch,
    wire: v.wire,
    window: v.window,
    startSeq: v['start-seq'],
    ...(tls !== undefined ? { tls } : {}),
  }).catch((err: Error) => {
    if (err instanceof RangeError) throw new PicketError('PICKET_ERR_CONFIG', `${err.message}; see --help`)
    return err
  })
  if (summary instanceof Error) {
    process.stderr.write(`picket inject-scan: ${summary.message}\n`)
    return 1
  }
  process.stdout.write(v.json ? JSON.stringify(summary, null, 2) + '\n' : formatSummary(summary))
  return summary.batches.refused > 0 ? 1 : 0
}
