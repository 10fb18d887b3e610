import t from 'tap'
import { join } from 'node:path'
import { startBackend } from '../../backend/server.js'
import { createLogger } from '../../shared/logger.js'
import { injectScan } from '../../scripts/injector/index.js'
import { httpRequest } from '../helpers/http.js'
import { newToken, writeTokensFile } from '../helpers/tokens.js'
import { tempDir } from './helpers/records.js'

// Defect 8 of issue 11: /metrics and /healthz skipped the DNS-rebinding
// guard (they answered `Host: evil.example` with 200), and /metrics listed
// every host id and the database path to whoever asked.

const quiet = (): ReturnType<typeof createLogger> => createLogger('test-guard', { level: 'fatal', pretty: false })
const HOST = 'guarded-host-8a'
const REBOUND = { host: 'evil.example' }

t.test('a rebound Host cannot read /metrics or /healthz, and neither shows an unauthenticated caller host ids or the db path (defect 8)', async t => {
  const tmp = tempDir('picket-guard-')
  t.teardown(tmp.cleanup)
  const db = join(tmp.dir, 'secret-store-path.db')
  const b = await startBackend({ listen: '127.0.0.1:0', http: '127.0.0.1:0', db, workers: 1, console: false, logger: quiet() })
  t.teardown(b.close)
  const url = b.http?.url ?? ''
  const s = await injectScan({ collector: b.collector.address, hostId: HOST, ports: 20 })
  t.equal(s.batches.ok, s.batches.sent, 'a host shipped, so there is a host id to leak')
  await b.flush()

  for (const path of ['/metrics', '/healthz']) {
    const r = await httpRequest(url, path, { headers: REBOUND })
    t.equal(r.status, 403, `${path} with Host: evil.example is refused`)
    t.match(JSON.parse(r.body), { error: 'PICKET_ERR_CONSOLE_TOKEN', message: /DNS rebinding/ })
    t.notMatch(r.body, HOST)
  }
  for (const path of ['/metrics', '/healthz']) {
    const r = await httpRequest(url, path)
    t.ok(r.status === 200, `${path} on loopback without a token still answers`)
    t.notOk(r.body.includes(HOST), `${path} names no host id`)
    t.notOk(r.body.includes('secret-store-path'), `${path} does not show the db path`)
  }
  const health = JSON.parse((await httpRequest(url, '/healthz')).body) as { status: string, store: Record<string, unknown>, bridge: { workers: unknown[] } }
  t.equal(health.status, 'ok')
  t.same(health.store, { ok: true }, 'the store\'s health without its path')
  t.equal(health.bridge.workers.length, 1, 'the rest of the report is there for troubleshooting')
})

t.test('with tokens, /healthz tells a caller without one only the status (load balancers), and /metrics nothing', async t => {
  const tmp = tempDir('picket-guard-')
  t.teardown(tmp.cleanup)
  const token = newToken()
  const httpTokensFile = writeTokensFile(tmp.dir, { dana: token })
  const b = await startBackend({ listen: '127.0.0.1:0', http: '127.0.0.1:0', httpTokensFile, db: join(tmp.dir, 'secret-store-path.db'), workers: 1, console: false, logger: quiet() })
  t.teardown(b.close)
  const url = b.http?.url ?? ''
  for (const path of ['/metrics', '/healthz']) t.equal((await httpRequest(url, path, { headers: REBOUND })).status, 403, `${path}: the rebinding guard comes first`)
  const lb = await httpRequest(url, '/healthz')
  t.equal(lb.status, 200)
  t.same(Object.keys(JSON.parse(lb.body)).sort(), ['detail', 'status', 'time'], 'the status alone')
  t.notOk(lb.body.includes('secret-store-path'))
  t.equal((await httpRequest(url, '/metrics')).status, 401, '/metrics needs the token (Prometheus sends it: authorization.credentials_file)')
  const full = await httpRequest(url, '/healthz', { headers: { authorization: `Bearer ${token}`, ...REBOUND } })
  t.equal(full.status, 200, 'with a token, any Host')
  t.match(JSON.parse(full.body), { store: { path: /secret-store-path\.db$/, ok: true } }, 'an analyst sees the whole report')
})
