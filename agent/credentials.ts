import * as grpc from '@grpc/grpc-js'
import { readFileSync } from 'node:fs'
import { PicketError } from '../shared/errors.js'
import type { AgentConfig } from './options.js'

/** The channel credentials for the collector: plain, TLS (ca) or mTLS (ca, cert and key), from PEM files. */
export function credentialsFor (tls: AgentConfig['tls']): grpc.ChannelCredentials {
  if (tls === undefined) return grpc.credentials.createInsecure()
  const read = (p: string | undefined, what: string): Buffer | null => {
    if (p === undefined) return null
    try {
      return readFileSync(p)
    } catch (err) {
      throw new PicketError('PICKET_ERR_CONFIG', `--tls-${what} ${p} cannot be read: ${(err as Error).message}`)
    }
  }
  return grpc.credentials.createSsl(read(tls.ca, 'ca'), read(tls.key, 'key'), read(tls.cert, 'cert'))
}
