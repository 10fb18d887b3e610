import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
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
  return hostname()
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
