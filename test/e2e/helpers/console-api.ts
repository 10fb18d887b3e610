import type { FastifyInstance } from 'fastify'
import { randomUUID } from 'node:crypto'
import type { Bridge } from '../../../backend/bridge/types.js'
import { createConsole, type ConsoleOptions } from '../../../backend/console/index.js'
import type { FindingEvent } from '../../../backend/detection/finding.js'
import { HttpTokens } from '../../../backend/http-tokens.js'
import { createHttpServer, type BackendContext, type HealthReport } from '../../../backend/http.js'
import { createMetrics } from '../../../backend/metrics.js'
import { AlertStore } from '../../../backend/store/index.js'
import { createLogger } from '../../../shared/logger.js'
import type { DetectionFinding } from '../../../shared/ocsf/types.js'

// The console on the backend's real HTTP server (createHttpServer: the access
// check, /healthz) over a real in-memory alert store, without collector or
// detection workers: for API tests that seed the store directly.

/** Analysts and their tokens, for fixtures that triage (any test may send these). */
export const ALICE = 'alice-7f3c0e9a2b5d4c1e8f6a0b3d5c7e9f1a2b4c'
export const BOB = 'bob-1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c'

export interface ApiFixture {
  app: FastifyInstance
  store: AlertStore
  close: () => Promise<void>
}

const bridge = {
  kind: 'test',
  start: async () => {},
  submit: async () => ({ status: 'OK' }),
  health: async () => ({ kind: 'test', reachable: true, ok: true, detail: 'test bridge', workers: [] }),
  skip: () => {},
  flush: async () => {},
  queueDepths: () => [],
  snapshot: () => [],
  close: async () => {},
} as unknown as Bridge

export interface FixtureOptions {
  /** analyst name → token (default: alice and bob) */
  tokens?: Record<string, string>
  /** requests without a token may read (default true, as on a loopback listener) */
  anonymousReads?: boolean
  console?: ConsoleOptions
}

/** The Authorization header of an analyst's token. */
export function bearer (token: string): { authorization: string } {
  return { authorization: `Bearer ${token}` }
}

export async function apiFixture (opts: FixtureOptions = {}): Promise<ApiFixture> {
  const store = AlertStore.open(':memory:')
  const logger = createLogger('console-test', { level: 'silent' })
  const health = async (): Promise<HealthReport> => ({
    status: 'ok',
    time: new Date().toISOString(),
    uptimeSeconds: 0,
    collector: { address: '127.0.0.1:0', streams: 0 },
    bridge: await bridge.health(),
    store: { path: ':memory:', ok: true },
    detection: { openIncidents: { host: 0, fleet: 0 }, findingsQueued: 0, lastFindingAt: undefined },
    hints: [],
  })
  const tokens = new HttpTokens(Object.entries(opts.tokens ?? { alice: ALICE, bob: BOB }).map(([name, token]) => ({ token, name })))
  const access = { tokens, anonymousReads: opts.anonymousReads ?? true }
  const ctx: BackendContext = { store, bridge, metrics: createMetrics(), logger, health, access, collectorAddress: '127.0.0.1:0' }
  const app = await createHttpServer({ ctx, plugins: [createConsole(opts.console)] })
  await app.ready()
  return {
    app,
    store,
    close: async () => {
      await app.close()
      store.close()
    },
  }
}

export interface SeedOptions {
  host?: string
  hostname?: string
  source?: string
  technique?: string
  ports?: number
  firstSeen?: number
  lastSeen?: number
  activity?: 'create' | 'update' | 'close'
  id?: string
  /** the rule's ref (default picket_t1046_port_scan) */
  rule?: string
  /** the rule file and line the finding names (unmapped.picket.rule) */
  ruleFile?: { file: string, line: number, type?: string }
  /** finding_info.data_sources[0] (default network_activity) */
  dataSource?: string
}

/** A FindingEvent shaped as the detection plane makes them (a T1046 port scan of one host). */
export function findingEvent (o: SeedOptions = {}): FindingEvent {
  const id = o.id ?? randomUUID()
  const host = o.host ?? 'web-1'
  const source = o.source ?? '198.51.100.7'
  const technique = o.technique ?? 'T1046'
  const first = o.firstSeen ?? Date.now() - 5000
  const last = o.lastSeen ?? first + 4000
  const ports = Array.from({ length: o.ports ?? 20 }, (_, i) => ({ port: 20 + i * 7, count: 1 + (i % 3), first_seen_time: first + i * 100, last_seen_time: first + i * 100 }))
  const title = `Port scan of ${o.hostname ?? host} from ${source}`
  const finding = {
    class_uid: 2004,
    class_name: 'Detection Finding',
    category_uid: 2,
    category_name: 'Findings',
    activity_id: 1,
    activity_name: 'Create',
    type_uid: 200401,
    severity_id: 3,
    severity: 'Medium',
    status_id: 1,
    status: 'New',
    time: last,
    message: `${title}: ${ports.length} ports probed`,
    metadata: { version: '1.8.0', product: { name: 'Picket', vendor_name: 'Picket', version: '0.1.0' }, uid: randomUUID() },
    device: { type_id: 0, type: 'Unknown', uid: host, ...(o.hostname !== undefined ? { hostname: o.hostname } : {}) },
    finding_info: {
      uid: id,
      title,
      types: ['Port Scan'],
      first_seen_time: first,
      last_seen_time: last,
      attacks: [{ technique: { uid: technique, name: 'Network Service Discovery' }, tactic: { uid: 'TA0007', name: 'Discovery' } }],
      analytic: { uid: o.rule ?? 'picket_t1046_port_scan', name: o.rule ?? 'picket_t1046_port_scan', type_id: 1, type: 'Rule' },
      data_sources: [o.dataSource ?? 'network_activity'],
    },
    evidences: [{ name: 'first', src_endpoint: { ip: source, port: 40000 }, dst_endpoint: { ip: '10.0.0.1', port: 22 }, device: { uid: host }, data: { time: first, class_uid: 4001, activity_id: 5, activity_name: 'Refuse' } }],
    unmapped: { picket: { ports, ports_total: ports.length, ...(o.ruleFile !== undefined ? { rule: { ref: o.rule, ...o.ruleFile } } : {}) } },
  } as unknown as DetectionFinding
  return {
    activity: o.activity ?? 'create',
    finding,
    summary: {
      id,
      rule: o.rule ?? 'picket_t1046_port_scan',
      ruleName: 'Port scan (T1046)',
      title,
      technique,
      tactic: 'TA0007',
      severityId: 3,
      hostId: host,
      hosts: [host],
      hostsTotal: 1,
      sources: [source],
      sourcesTotal: 1,
      portCount: ports.length,
      firstSeen: first,
      lastSeen: last,
      records: ports.length,
    },
    crossRecvAt: undefined,
  }
}
