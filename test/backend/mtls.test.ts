import t from 'tap'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createLogger } from '../../shared/logger.js'
import { startBackend } from '../../backend/server.js'
import { AgentStream, connectCollector, injectScan } from '../../scripts/injector/index.js'
import { hasCommand } from '../helpers/env.js'
import { batch, tempDir } from './helpers/records.js'

// With mTLS the host id comes from the agent's client certificate: a batch
// claiming another host is refused, and the collector may listen beyond
// loopback without --allow-remote.

const skip = hasCommand('openssl') ? false : 'needs openssl to make test certificates (apt-get install openssl)'
t.test('mTLS', { skip }, async t => {
  const tmp = tempDir('picket-mtls-')
  t.teardown(tmp.cleanup)
  const f = (n: string): string => join(tmp.dir, n)
  const ssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: tmp.dir, stdio: 'pipe' }) }
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=picket-test-ca')
  const leaf = (name: string, cn: string, ext: string): void => {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    writeFileSync(f(`${name}.ext`), ext)
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`)
  }
  leaf('server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
  leaf('client', 'tls-host-a', 'subjectAltName=DNS:tls-host-a\nextendedKeyUsage=clientAuth\n')

  t.test('the client certificate names the host; other host ids are refused', async t => {
    const b = await startBackend({
      listen: '0.0.0.0:0', http: false, db: f('p.db'), workers: 1, console: false,
      tls: { cert: f('server.crt'), key: f('server.key'), clientCa: f('ca.crt') },
      logger: createLogger('test-mtls', { level: 'fatal', pretty: false }),
    })
    t.teardown(b.close)
    t.equal(b.collector.host, '0.0.0.0', 'mTLS allows a non-loopback address')
    const addr = `127.0.0.1:${b.collector.port}`
    const tls = { ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key'), serverName: 'localhost' }
    const ok = await injectScan({ collector: addr, tls, hostId: 'tls-host-a', ports: 20, seed: 1 })
    t.equal(ok.batches.ok, 1, 'the host its certificate names')
    const client = connectCollector(addr, { tls })
    t.teardown(() => client.close())
    const s = new AgentStream(client, 'tls-host-b')
    const b2 = batch('tls-host-b', [{ t: Date.now(), src: '198.51.100.1', port: 1 }])
    const ack = await s.send(b2.bytes, b2.count)
    t.match(ack, { status: 'REFUSED', error: 'PICKET_ERR_HOST_ID', code: 7, message: /not the name in this agent's client certificate \(tls-host-a/ })
    await s.end()
    await t.rejects(injectScan({ collector: addr, tls: { ca: f('ca.crt'), serverName: 'localhost' }, hostId: 'tls-host-a', ports: 1, timeoutMs: 3000 }),
      'without a client certificate nothing gets through')
    await b.flush()
    t.equal(b.store.getHost('tls-host-b'), undefined, 'nothing recorded for the impostor')
  })
})
