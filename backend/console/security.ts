import type { FastifyReply, FastifyRequest } from 'fastify'
import { isIP } from 'node:net'
import type { ErrorBody } from './types.js'

// Response headers that make a rendering bug harmless: the page's script
// comes only from this origin (no inline script, no eval, no remote origin),
// DOM sinks that parse HTML from strings refuse to work at all (Trusted
// Types with no policy), nothing may frame the page, and no URL (the access
// token travels in the query) leaks through a Referer.

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ')

export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy': CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
})

export function setSecurityHeaders (reply: FastifyReply): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) if (!reply.hasHeader(k)) void reply.header(k, v)
}

/**
 * Without an access token the console answers only requests addressed to an
 * IP literal or localhost. A page on another site that rebinds its own DNS
 * name to 127.0.0.1 would otherwise read the findings through the victim's
 * browser; its requests carry that name in Host, so they stop here.
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

export async function rebindingGuard (req: FastifyRequest, reply: FastifyReply): Promise<void> {
  if (hostAllowed(req.headers.host)) return
  const body: ErrorBody = {
    error: 'PICKET_ERR_CONSOLE_TOKEN',
    message: 'this console runs without an access token, so it only answers requests addressed to an IP address or localhost ' +
      '(a guard against DNS rebinding); open it as http://127.0.0.1:<port>/, or start the backend with an access token to use a host name',
  }
  await reply.code(403).send(body)
}
