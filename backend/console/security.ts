import type { FastifyReply } from 'fastify'

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

// The DNS-rebinding guard and the access tokens are the HTTP server's, for
// every route: backend/http-access.ts.
