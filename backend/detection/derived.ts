import { getDomain } from 'tldts'
import { CLASS } from '../../shared/ocsf/constants.js'
import type { RuleSet } from './rules/compile.js'

// Fields a rule may group by or match that no record carries: the projector
// computes them in each row of their class from a field the record has. OCSF
// 1.8.0 has no attribute for a DNS query's registered domain (dns_query has
// hostname, type, class, opcode, packet_uid), so a rule that counts
// subdomains per registered domain reads `query.registered_domain`, derived
// here from query.hostname with the Public Suffix List (tldts): the agent's
// records stay plain OCSF.

export interface DerivedSpec {
  classUid: number
  /** the derived field's path, as rules name it */
  path: string
  /** the field it is computed from */
  from: string
  derive: (v: string) => string | undefined
}

/** A derived field as the projector fills it: by column slot. */
export interface DerivedField {
  slot: number
  from: number
  derive: (v: string) => string | undefined
}

const CACHE_MAX = 8192
const domains = new Map<string, string | null>()

/**
 * The registered domain (public suffix + one label) of a DNS name, private
 * suffixes included (github.io, s3.amazonaws.com: each tenant is its own
 * domain, as it is its own owner); undefined for a bare suffix, an address
 * or a name with no known suffix.
 */
export function registeredDomain (hostname: string): string | undefined {
  let d = domains.get(hostname)
  if (d === undefined) {
    const h = (hostname.endsWith('.') ? hostname.slice(0, -1) : hostname).toLowerCase()
    d = getDomain(h, { allowPrivateDomains: true, extractHostname: false }) ?? null
    if (domains.size >= CACHE_MAX) domains.clear()
    domains.set(hostname, d)
  }
  return d ?? undefined
}

export const DERIVED_FIELDS: readonly DerivedSpec[] = [
  { classUid: CLASS.DNS_ACTIVITY.uid, path: 'query.registered_domain', from: 'query.hostname', derive: registeredDomain },
]

/**
 * Where a class's rules read a derived field, project the field it comes
 * from for that class and have the projector fill it in. Idempotent; returns `rules`.
 */
export function applyDerived (rules: RuleSet, specs: readonly DerivedSpec[] = DERIVED_FIELDS): RuleSet {
  for (const spec of specs) {
    const slot = rules.paths.indexOf(spec.path)
    if (slot < 0) continue
    const c = rules.routing.classes.find(x => x.uid === spec.classUid)
    if (c === undefined || !c.slots.includes(slot)) continue
    let from = rules.paths.indexOf(spec.from)
    if (from < 0) { from = rules.paths.length; rules.paths.push(spec.from) }
    if (!c.slots.includes(from)) c.slots.push(from)
    c.derived ??= []
    if (!c.derived.some(d => d.slot === slot)) c.derived.push({ slot, from, derive: spec.derive })
  }
  return rules
}
