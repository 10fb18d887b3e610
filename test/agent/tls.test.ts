import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startAgent } from '../../agent/index.js'
import { isPicketError } from '../../shared/errors.js'
import { captureLog, firstDifference, range, receivedIds } from '../helpers/agent.js'
import { TestCollector } from '../helpers/collector.js'
import { hasCommand } from '../helpers/env.js'

// The shipper over TLS and mTLS, against a collector that demands a client
// certificate signed by its CA; and what happens without one.

const skip = hasCommand('openssl') ? false : 'needs openssl to make test certificates (apt-get install openssl)'

t.test('TLS and mTLS to the collector', { skip }, async t => {
  const dir = t.testdir()
  const f = (n: string): string => join(dir, n)
  const ssl = (...args: string[]): void => { execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' }) }
  ssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=picket-agent-test-ca')
  const leaf = (name: string, cn: string, ext: string): void => {
    ssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`)
    writeFileSync(f(`${name}.ext`), ext)
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`)
  }
  leaf('server', 'collector.test', 'subjectAltName=DNS:collector.test\n')
  leaf('client', 'tls-agent', 'subjectAltName=DNS:tls-agent\nextendedKeyUsage=clientAuth\n')
  const c = await TestCollector.start({ tls: { cert: readFileSync(f('server.crt')), key: readFileSync(f('server.key')), clientCa: readFileSync(f('ca.crt')) } })
  t.teardown(() => c.close())

  t.test('with a client certificate, every record arrives', async t => {
    const { log } = captureLog()
    const agent = await startAgent({
      collector: c.address, hostId: 'tls-agent', dataDir: t.testdir(), source: 'synth', synth: { total: 3000 }, logger: log,
      tls: { ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key'), serverName: 'collector.test' },
    })
    await c.waitFor(() => c.acceptedRecords >= 3000, 20_000)
    await agent.stop()
    t.equal(firstDifference(receivedIds(c), range(0, 3000)), 'none')
  })

  t.test('without one, the handshake fails: nothing is sent, everything stays spooled', async t => {
    const { log, lines } = captureLog()
    const before = c.arrivals.length
    const agent = await startAgent({
      collector: c.address, hostId: 'tls-anon', dataDir: t.testdir(), source: 'synth', synth: { total: 1000 }, logger: log,
      backoffInitialMs: 50, backoffMaxMs: 200, shutdownTimeoutMs: 200, tls: { ca: f('ca.crt'), serverName: 'collector.test' },
    })
    await new Promise(resolve => setTimeout(resolve, 1500))
    const s = await agent.stop()
    t.equal(c.arrivals.length, before, 'the collector got nothing')
    t.equal(s.spool.pendingRecords, 1000, 'the records wait in the spool')
    t.ok(lines.some(l => typeof l.retryInMs === 'number'), 'the failures are logged with the backoff')
  })

  t.test('a TLS file that cannot be read is a configuration error that names it', async t => {
    try {
      await startAgent({ collector: c.address, hostId: 'x', dataDir: t.testdir(), source: 'synth', logger: captureLog().log, tls: { ca: f('nope.crt') } })
      t.fail('must not start')
    } catch (err) {
      t.ok(isPicketError(err, 'PICKET_ERR_CONFIG'))
      t.match((err as Error).message, /--tls-ca .*nope\.crt cannot be read/)
    }
  })
})
