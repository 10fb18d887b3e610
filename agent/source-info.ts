import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import type { SourceInfo } from '../shared/ocsf/network.js'
import { VERSION } from '../shared/version.js'

/** The host id an agent reports under: --host-id, else /etc/machine-id, else the hostname. */
export function defaultHostId (): string {
  try {
    const id = readFileSync('/etc/machine-id', 'utf8').trim()
    if (/^[0-9a-f]{32}$/.test(id)) return id
  } catch {}
  return hostname()
}

export function sourceInfo (hostId?: string): SourceInfo {
  return { hostId: hostId ?? defaultHostId(), hostname: hostname(), agentVersion: VERSION }
}
