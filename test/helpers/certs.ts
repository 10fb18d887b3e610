import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

// Test certificates made with openssl: a CA, and leaves it signs. Callers
// check hasCommand('openssl') first.

export interface Leaf { cert: string, key: string }

export function makeCa (dir: string): { ca: string, leaf: (name: string, cn: string, ext: string) => Leaf } {
  const ssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }) }
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=picket-test-ca')
  return {
    ca: join(dir, 'ca.crt'),
    leaf: (name, cn, ext) => {
      ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
      writeFileSync(join(dir, `${name}.ext`), ext)
      ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`)
      return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) }
    },
  }
}

/** A server certificate for localhost and 127.0.0.1. */
export const SERVER_EXT = 'subjectAltName=DNS:localhost,IP:127.0.0.1\n'
