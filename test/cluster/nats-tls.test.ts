import t from 'tap'
import { spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { injectScan } from '../../scripts/injector/index.js'
import { spawnBackend, storedFindings, waitUntil } from '../backend/helpers/backend-process.js'
import { tempDir } from '../backend/helpers/records.js'
import { makeCa, SERVER_EXT } from '../helpers/certs.js'
import { spawnPicket } from '../helpers/cli.js'
import { requireReal } from '../helpers/env.js'
import { freePort, NATS_SERVER } from '../helpers/nats.js'

// Cluster mode over TLS: a real nats-server that requires TLS and verifies
// client certificates (a CA made with openssl here), `picket backend
// --bridge tls://...` and `picket detect` with the --nats-tls-* flags, and a
// scan that must come out as a finding. Without the client certificate the
// backend does not start, and says why.

t.test('backend and detect node reach a TLS-only nats-server with --nats-tls-*', async t => {
  if (!requireReal(t, { commands: ['nats-server', 'openssl'] })) return
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const pki = makeCa(tmp.dir)
  const server = pki.leaf('server', 'localhost', SERVER_EXT)
  const client = pki.leaf('client', 'picket-node', 'extendedKeyUsage=clientAuth\n')
  const port = await freePort()
  mkdirSync(join(tmp.dir, 'js'))
  const conf = join(tmp.dir, 'nats.conf')
  writeFileSync(conf, [
    `listen: 127.0.0.1:${port}`,
    `jetstream { store_dir: "${join(tmp.dir, 'js')}" }`,
    `tls { cert_file: "${server.cert}", key_file: "${server.key}", ca_file: "${pki.ca}", verify: true, timeout: 2 }`,
    '',
  ].join('\n'))
  const nats = spawn(NATS_SERVER, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let natsErr = ''
  nats.stderr.setEncoding('utf8').on('data', (d: string) => { natsErr += d })
  t.teardown(async () => { if (nats.exitCode === null) { nats.kill('SIGTERM'); await new Promise(resolve => nats.once('exit', resolve)) } })
  await waitUntil(() => /Server is ready/.test(natsErr), `nats-server to start:\n${natsErr}`, 15_000)
  const url = `tls://127.0.0.1:${port}`
  const flags = ['--nats-tls-ca', pki.ca, '--nats-tls-cert', client.cert, '--nats-tls-key', client.key]

  const without = spawnPicket(['backend', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--db', join(tmp.dir, 'refused.db'), '--bridge', url, '--nats-tls-ca', pki.ca])
  t.not(await without.exited, 0, 'without a client certificate the backend does not start')
  t.match(without.stderr(), /cannot reach NATS at tls:\/\/127\.0\.0\.1:\d+/, 'and says which NATS it could not reach')

  const db = join(tmp.dir, 'p.db')
  const backend = await spawnBackend(db, ['--bridge', url, ...flags])
  t.teardown(async () => { await backend.stop() })
  const node = spawnPicket(['detect', '--nats', url, ...flags, '--node-id', 'tls-d1', '--http', '127.0.0.1:0'])
  t.teardown(async () => { await node.stop('SIGTERM') })
  const m = await node.waitFor(/\/metrics on (\S+)/)
  await waitUntil(async () => {
    const h = await fetch(`${m[1]}/healthz`).then(async r => await r.json() as { owned: number[] }).catch(() => ({ owned: [] }))
    return h.owned.length === 16
  }, 'the node to own every partition', 30_000)
  const host = 'tls-scan'
  const sent = await injectScan({ collector: backend.collector, hostId: host, ports: 30, batchSize: 10, seed: 5 })
  t.equal(sent.batches.ok, sent.batches.sent, 'every batch stored by JetStream over TLS')
  await waitUntil(() => storedFindings(db, host).some(f => f.portCount === 30), 'the finding of the scan', 20_000)
  t.pass('the scan came back from the detection node as a finding')

  const doc = spawnPicket(['doctor', '--bridge', url, ...flags, '--collector', backend.collector, '--db', db, '--no-agent'])
  await doc.exited
  t.match(doc.stdout(), new RegExp(`ok\\s+bridge ${url.replace(/[/.]/g, '\\$&')}\\s+connected`), `doctor reaches the TLS bridge:\n${doc.stdout()}`)
  t.match(doc.stdout(), /ok\s+partition 0\s+owned by tls-d1/)
})
