// HOST:PORT text, one way everywhere: an IPv6 literal goes in brackets.

export interface HostPort { host: string, port: number, toString: () => string }

/** `host:port`, or `[v6]:port` for an address with a colon. */
export function formatHostPort (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

/** `host`, or `[v6]` for an address with a colon: the authority part of a URL without the port. */
export function formatHost (host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

export function parseHostPort (text: string): HostPort | undefined {
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:\s]+):(\d{1,5})$/.exec(text)
  if (m === null) return undefined
  const port = Number(m[2])
  if (port > 65535) return undefined
  const host = m[1]
  return { host, port, toString: () => formatHostPort(host, port) }
}

export function isLoopback (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1'
}
