import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { checkHostId } from '../shared/host-id.js'
import type { SourceInfo } from '../shared/ocsf/network.js'
import { VERSION } from '../shared/version.js'

// Host identity, shared by the agent and `picket capture`: --host-id, else
// /etc/machine-id, else the hostname.

/** The host id an agent reports under: --host-id, else /etc/machine-id, else the hostname. */
export function defaultHostId (): string {
  try {
    const id = readFileSync('/etc/machine-id', 'utf8').trim()
    if (/^[0-9a-f]{32}$/.test(id)) return id
  } catch {}
  return hostIdOf(hostname())
}

/** `name` made to pass the collector's host id rule (shared/host-id.ts): a hostname is not bound by it. */
export function hostIdOf (name: string): string {
  if (checkHostId(name) === undefined) return name
  const tame = name.replace(/[^A-Za-z0-9._:@/-]/g, '_').slice(0, 255)
  return /^[A-Za-z0-9]/.test(tame) ? tame : `h${tame}`
}

/** Who the records come from: the host id (default: defaultHostId()), this host's name, this version. */
export function sourceInfo (hostId?: string): SourceInfo {
  return { hostId: hostId ?? defaultHostId(), hostname: hostname(), agentVersion: VERSION }
}

/** A folder name for a host id: itself when it is tame, else a readable prefix and a hash. */
export function hostDirName (hostId: string): string {
  if (/^[A-Za-z0-9._-]{1,100}$/.test(hostId) && hostId !== '.' && hostId !== '..') return hostId
  const tame = hostId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60)
  return `${tame}-${createHash('sha256').update(hostId).digest('hex').slice(0, 16)}`
}
