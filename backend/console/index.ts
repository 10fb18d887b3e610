import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { rootPath } from '../../shared/paths.js'
import type { BackendContext, HttpPlugin } from '../http.js'
import { registerApi } from './api.js'
import { setSecurityHeaders } from './security.js'
import { StreamHub } from './stream.js'

// The operator console: the JSON API and live stream under /api, and the
// built page (dist/console/, from backend/console/page/build.mjs) at /.
// startBackend() loads this module and calls registerConsole(app, ctx)
// before the HTTP server listens.

export interface ConsoleOptions {
  /** a host with no batch for this long is flagged stale (default 120 s) */
  staleAfterMs?: number
  /** SSE keep-alive (`ping` event) interval (default 15 s) */
  keepAliveMs?: number
  /** open event streams of requests with an access token, at most (default 64) */
  maxStreams?: number
  /** open event streams of requests without one, at most (default 8): anyone on loopback cannot use up the analysts' */
  maxAnonymousStreams?: number
  /** the built page (default <root>/dist/console) */
  pageDir?: string
}

const NOT_BUILT = 'The console page is not built. Run `npm run build` (or `node backend/console/page/build.mjs`) and reload.\n' +
  'The JSON API under /api works without it.\n'

function htmlAttr (s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

async function registerPage (app: FastifyInstance, ctx: BackendContext, dir: string): Promise<void> {
  const assets = join(dir, 'assets')
  if (existsSync(assets)) {
    await app.register(fastifyStatic, {
      root: assets,
      prefix: '/assets/',
      decorateReply: false,
      index: false,
      serveDotFiles: false,
      cacheControl: false,
      setHeaders: (res) => { res.setHeader('cache-control', 'no-cache') },
    })
  } else {
    ctx.logger.warn({ dir }, 'the console page is not built (npm run build); the console API works, the page does not')
  }
  app.get('/', async (req, reply) => {
    let html: string
    try {
      html = await readFile(join(dir, 'index.html'), 'utf8')
    } catch {
      return await reply.code(503).type('text/plain; charset=utf-8').send(NOT_BUILT)
    }
    // The browser fetches the page's script and style itself, without the
    // Authorization header; when the page was opened with ?access_token=
    // (which the access check has just accepted), the asset URLs carry it too.
    const token = (req.query as Record<string, unknown>).access_token
    const q = typeof token === 'string' && ctx.access.tokens.analyst(token) !== undefined ? `&access_token=${encodeURIComponent(token)}` : ''
    return await reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(html.replaceAll('{{q}}', htmlAttr(q)))
  })
}

export function createConsole (opts: ConsoleOptions = {}): HttpPlugin {
  return async (app, ctx) => {
    const staleAfterMs = opts.staleAfterMs ?? 120_000
    const hub = new StreamHub(ctx.store, {
      keepAliveMs: opts.keepAliveMs ?? 15_000,
      staleAfterMs,
      maxClients: { authorised: opts.maxStreams ?? 64, anonymous: opts.maxAnonymousStreams ?? 8 },
      maxBufferedBytes: 4 * 1024 * 1024,
      replayLimit: 500,
    }, ctx.logger.child({ component: 'console-stream' }))
    hub.start()
    // Open streams would hold server.close() until every console tab goes away
    app.addHook('preClose', async () => { hub.close() })
    app.addHook('onClose', async () => { hub.close() })
    app.addHook('onSend', async (_req, reply, payload) => {
      setSecurityHeaders(reply)
      return payload
    })
    await app.register(async (api) => { await registerApi(api, ctx, { staleAfterMs, hub }) }, { prefix: '/api' })
    await registerPage(app, ctx, opts.pageDir ?? rootPath('dist', 'console'))
    ctx.logger.debug({ staleAfterMs }, 'console registered')
  }
}

/** What startBackend() calls: the console with its defaults. */
export const registerConsole: HttpPlugin = createConsole()
export default registerConsole
