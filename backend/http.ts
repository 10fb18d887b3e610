import Fastify, { LogController, type FastifyInstance } from 'fastify'
import { timingSafeEqual } from 'node:crypto'
import type { Logger } from '../shared/logger.js'
import type { BridgeHealth } from './bridge/types.js'
import type { Bridge } from './bridge/types.js'
import type { FleetStats } from './detection/fleet.js'
import type { Metrics } from './metrics.js'
import type { AlertStore } from './store/index.js'

// The backend's HTTP server (fastify): GET /healthz and GET /metrics, and the
// instance the console (backend/console/, issue 6) registers its routes on.

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

/** What the console (or any other HTTP plugin) gets to build on. */
export interface BackendContext {
  store: AlertStore
  bridge: Bridge
  metrics: Metrics
  logger: Logger
  health: () => Promise<HealthReport>
  /** when set, every request must carry it (Authorization: Bearer …, or ?access_token= for EventSource) */
  httpToken: string | undefined
  collectorAddress: string
}

/** Registers routes on the backend's fastify instance before it listens. */
export type HttpPlugin = (app: FastifyInstance, ctx: BackendContext) => Promise<void> | void

export interface HttpOptions {
  ctx: BackendContext
  plugins: HttpPlugin[]
}

function tokenOk (given: string | undefined, want: string): boolean {
  if (given === undefined) return false
  const a = Buffer.from(given)
  const b = Buffer.from(want)
  return a.length === b.length && timingSafeEqual(a, b)
}

export async function createHttpServer (opts: HttpOptions): Promise<FastifyInstance> {
  const { ctx } = opts
  const app = Fastify({
    loggerInstance: ctx.logger.child({ component: 'http' }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 1024 * 1024,
  }) as unknown as FastifyInstance
  const token = ctx.httpToken
  if (token !== undefined) {
    app.addHook('onRequest', async (req, reply) => {
      const auth = req.headers.authorization
      const bearer = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined
      const query = (req.query as Record<string, string | undefined> | undefined)?.access_token
      if (tokenOk(bearer, token) || tokenOk(query, token)) return
      await reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'PICKET_ERR_CONSOLE_TOKEN', message: 'this backend needs its access token (the --http-token it was started with): open the console as /?access_token=<token>, or send Authorization: Bearer <token>' })
    })
  }
  app.get('/healthz', async (_req, reply) => {
    const h = await ctx.health()
    return await reply.code(h.status === 'ok' ? 200 : 503).send(h)
  })
  app.get('/metrics', async (_req, reply) => {
    const text = await ctx.metrics.registry.metrics()
    return await reply.header('content-type', ctx.metrics.registry.contentType).send(text)
  })
  for (const p of opts.plugins) await p(app, ctx)
  return app
}
