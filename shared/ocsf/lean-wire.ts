// The parts of the lean wire's definition (lean.ts) that need no OCSF
// schema: what a shape's field path may be, and the protocol names. They live
// apart so that the backend's scanner can use them without loading the
// schema's modules in every detection worker; lean.ts exports them as its
// own.

/** IANA protocol numbers → OCSF protocol_name (the lower-case keyword). */
export const IANA_PROTOCOL: Readonly<Record<number, string>> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'ipv6-icmp' }

/** Keys that would reach an object's prototype if a path set them. */
export const UNSAFE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

/** Why a shape's field path cannot be used, or undefined when it can. */
export function badPath (path: unknown): string | undefined {
  if (typeof path !== 'string' || path === '') return `a field path must be a non-empty string, got ${describe(path)}`
  for (const part of path.split('.')) {
    if (part === '') return `field path '${path}' has an empty segment`
    if (UNSAFE_KEYS.has(part)) return `field path '${path}' names '${part}', which is no OCSF field`
  }
  return undefined
}

function describe (v: unknown): string {
  return v === null ? 'nil' : Array.isArray(v) ? 'an array' : typeof v
}
