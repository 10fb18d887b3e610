import type { FastifyReply, FastifyRequest } from 'fastify'
import { isIP } from 'node:net'
import type { HttpTokens } from './http-tokens.js'
import type { LogLimiter } from './log-limit.js'

// Who may do what on the backend's HTTP server, decided once per request for
// every route (/healthz, /metrics, the console's page, API and stream, and
// any plugin's):
//   - a request carrying a token from the tokens file is that analyst's;
//     a token that is not in the file is refused, never downgraded
//   - a request without a token must be addressed to an IP literal or
//     localhost (the DNS-rebinding guard), and then may only read: every
//     route when anonymous reads are on (a loopback listener), else only the
//     status line of /healthz, for load balancers that cannot send a token
//   - changing anything (triage) always needs a token: the history records
//     the token's analyst, so there is no anonymous writer to record

export interface HttpAccess {
  tokens: HttpTokens
  /** requests without a token may read (GET, HEAD); only ever on a loopback listener */
  anonymousReads: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /** the analyst named by the request's access token; null without one */
    analyst: string | null
  }
}

const READS = new Set(['GET', 'HEAD'])
const TOKENS_HINT = 'tokens are the TOKEN NAME lines of the backend\'s --http-tokens-file'

/**
 * A DNS name in Host is how a page on another site reaches this server
 * through the victim's browser: it rebinds its own name to 127.0.0.1, and
 * its requests then carry that name. Requests addressed to an IP address or
 * localhost cannot come from such a page.
 */
export function hostAllowed (hostHeader: string | undefined): boolean {
  if (hostHeader === undefined || hostHeader === '') return false
  let host = hostHeader.toLowerCase()
  if (host.startsWith('[')) {
    const end = host.indexOf(']')
    if (end < 0) return false
    return isIP(host.slice(1, end)) === 6
  }
  const colon = host.lastIndexOf(':')
  if (colon >= 0) host = host.slice(0, colon)
  return isIP(host) === 4 || host === 'localhost' || host.endsWith('.localhost')
}

/** The token a request presents: Authorization: Bearer, or ?access_token= (EventSource cannot set headers). */
function presented (req: FastifyRequest): string | undefined | false {
  const auth = req.headers.authorization
  if (typeof auth === 'string' && /^bearer /i.test(auth)) return auth.slice(7).trim()
  const q = (req.query as Record<string, unknown> | undefined)?.access_token
  if (q === undefined) return undefined
  return typeof q === 'string' ? q : false
}

type Refusal = 'unknown_token' | 'rebinding' | 'read_needs_token' | 'write_needs_token'

const MESSAGES: Record<Refusal, string> = {
  unknown_token: `the access token is not one this backend knows; check it (${TOKENS_HINT}, read at start-up)`,
  rebinding: 'this request carries no access token, so it is answered only when addressed to an IP address or localhost ' +
    '(a guard against DNS rebinding); open it as http://127.0.0.1:<port>/, or send an access token (Authorization: Bearer <token>, or ?access_token=<token>) to use a host name',
  read_needs_token: `this backend needs an access token: open the console as /?access_token=<token>, or send Authorization: Bearer <token>; ${TOKENS_HINT}`,
  write_needs_token: 'changing a finding needs an access token, on this host too: the triage history records the analyst the token names. ' +
    `Open the console with ?access_token=<token> (picket start prints that URL), or send Authorization: Bearer <token>; ${TOKENS_HINT}`,
}

export function accessHook (access: HttpAccess, log: LogLimiter): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const refuse = async (req: FastifyRequest, reply: FastifyReply, why: Refusal): Promise<void> => {
    const code = why === 'rebinding' ? 403 : 401
    // the path only: a query may carry a token
    log.warn(`http:${why}`, { reason: why, status: code, method: req.method, path: req.url.split('?')[0].slice(0, 200), ip: req.ip }, 'HTTP request refused')
    if (code === 401) void reply.header('www-authenticate', 'Bearer')
    await reply.code(code).send({ error: 'PICKET_ERR_CONSOLE_TOKEN', message: MESSAGES[why] })
  }
  return async (req, reply) => {
    const token = presented(req)
    if (token !== undefined) {
      const name = token === false ? undefined : access.tokens.analyst(token)
      if (name === undefined) { await refuse(req, reply, 'unknown_token'); return }
      req.analyst = name
      return
    }
    if (!hostAllowed(req.headers.host)) { await refuse(req, reply, 'rebinding'); return }
    if (!READS.has(req.method)) { await refuse(req, reply, 'write_needs_token'); return }
    if (access.anonymousReads || req.routeOptions.url === '/healthz') return
    await refuse(req, reply, 'read_needs_token')
  }
}
