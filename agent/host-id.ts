import { createHash } from 'node:crypto'

// Host identity: the agent and `picket capture` share defaultHostId
// (source-info.ts): --host-id, else /etc/machine-id, else the hostname.
export { defaultHostId } from './source-info.js'

/** A folder name for a host id: itself when it is tame, else a readable prefix and a hash. */
export function hostDirName (hostId: string): string {
  if (/^[A-Za-z0-9._-]{1,100}$/.test(hostId) && hostId !== '.' && hostId !== '..') return hostId
  const tame = hostId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60)
  return `${tame}-${createHash('sha256').update(hostId).digest('hex').slice(0, 16)}`
}
