import Fastify, { LogController, type FastifyInstance } from 'fastify'
import type { Logger } from '../shared/logger.js'
import type { BridgeHealth } from './bridge/types.js'
import type { Bridge } from './bridge/types.js'
import type { FleetStats } from './detection/fleet.js'
import { accessHook, type HttpAccess } from './http-access.js'
import { LogLimiter } from './log-limit.js'
import type { Metrics } from './metrics.js'
import type { AlertStore } from './store/index.js'

// The backend's HTTP server (fastify): GET /healthz and GET /metrics, and the
// instance the console (backend/console/, issue 6) registers its routes on.
// Every route, a plugin's too, passes the access check (http-access.ts).

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down'
  time: string
  uptimeSeconds: number
  /** hosts: the collector's per-host counters held now (idle hosts are let go) */
  collector: { address: string, streams: number, connections: number, hosts: number }
  bridge: BridgeHealth
  store: { path: string, ok: boolean, error?: string }
  detection: { openIncidents: { host: number, fleet: number }, fleet: Pick<FleetStats, 'groups' | 'stateBytes' | 'budgetBytes' | 'evictions'>, findingsQueued: number, lastFindingAt: string | undefined }
  /** what to look at when records are captured but no alert appears */
  hints: string[]
}

/** /healthz without a token where anonymous reads are on: the report without the store's path. */
export type AnonymousHealthReport = Omit<HealthReport, 'store'> & { store: Omit<HealthReport['store'], 'path'> }

/** /healthz without a token where tokens are required: the status alone, for load balancers. */
export interface HealthStatus { status: HealthReport['status'], time: string, detail: string }

/** What the console (or any other HTTP plugin) gets to build on. */
export interface BackendContext {
  store: AlertStore
  bridge: Bridge
  metrics: Metrics
  logger: Logger
  health: () => Promise<HealthReport>
  /** the tokens and what a request without one may do */
  access: HttpAccess
  collectorAddress: string
}

/** Registers routes on the backend's fastify instance before it listens. */
export type HttpPlugin = (app: FastifyInstance, ctx: BackendContext) => Promise<void> | void

export interface HttpOptions {
  ctx: BackendContext
  plugins: HttpPlugin[]
}

function anonymousHealth (h: HealthReport): AnonymousHealthReport {
  return { ...h, store: { ok: h.store.ok, ...(h.store.error !== undefined ? { error: h.store.error } : {}) } }
}

export async function createHttpServer (opts: HttpOptions): Promise<FastifyInstance> {
  const { ctx } = opts
  const app = Fastify({
    loggerInstance: ctx.logger.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
  }) as unknown as FastifyInstance
  const refusals = new LogLimiter(ctx.logger.child({ component: 'http' }))
  app.decorateRequest('analyst', null)
  app.addHook('onRequest', accessHook(ctx.access, refusals))
  app.addHook('onClose', async () => { refusals.flush() })
  app.get('/healthz', async (req, reply) => {
    const h = await ctx.health()
    const code = h.status === 'ok' ? 200 : 503
    if (req.analyst !== null) return await reply.code(code).send(h)
    if (ctx.access.anonymousReads) return await reply.code(code).send(anonymousHealth(h))
    const body: HealthStatus = { status: h.status, time: h.time, detail: 'the full report (collector, detection workers, store, hints) needs an access token: send Authorization: Bearer <token>' }
    return await reply.code(code).send(body)
  })
  app.get('/metrics', async (_req, reply) => {
    const text = await ctx.metrics.registry.metrics()
    return await reply.header('content-type', ctx.metrics.registry.contentType).send(text)
  })
  for (const p of opts.plugins) await p(app, ctx)
  return app
}
