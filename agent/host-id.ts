import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'

/** /etc/machine-id (stable across reboots and renames), else the hostname. */
export function defaultHostId (machineIdPath = '/etc/machine-id'): string {
  try {
    const id = readFileSync(machineIdPath, 'utf8').trim()
    if (/^[0-9a-f]{32}$/i.test(id)) return id.toLowerCase()
  } catch {}
  return hostname()
}

/** A folder name for a host id: itself when it is tame, else a readable prefix and a hash. */
export function hostDirName (hostId: string): string {
  if (/^[A-Za-z0-9._-]{1,100}$/.test(hostId) && hostId !== '.' && hostId !== '..') return hostId
  const tame = hostId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60)
  return `${tame}-${createHash('sha256').update(hostId).digest('hex').slice(0, 16)}`
}
