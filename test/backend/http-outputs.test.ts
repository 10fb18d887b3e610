import t from 'tap'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { createLogger } from '../../shared/logger.js'
import type { DetectionFinding } from '../../shared/ocsf/types.js'
import { startBackend, type BackendHandle } from '../../backend/server.js'
import { injectScan } from '../../scripts/injector/index.js'
import { newToken, writeTokensFile } from '../helpers/tokens.js'
import { rulesDir, tempDir } from './helpers/records.js'

// The backend's HTTP side and outputs, on a real started backend: /healthz
// (the troubleshooting path), /metrics, the access token, plugin routes for
// the console, the pino line per finding, and the webhook with retry.

const quiet = (): ReturnType<typeof createLogger> => createLogger('test-http', { level: 'fatal', pretty: false })

function capture (): { logger: pino.Logger, lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = []
  const stream = new Writable({ write (c: Buffer, _e, cb) { chunks.push(c.toString()); cb() } })
  const logger = pino({ level: 'info' }, stream)
  return { logger, lines: () => chunks.join('').split('\n').filter(l => l !== '').map(l => JSON.parse(l) as Record<string, unknown>) }
}

async function waitFor (what: string, ok: () => boolean, ms = 15_000): Promise<void> {
  const end = Date.now() + ms
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

t.test('/healthz reports the bridge and every worker; /metrics serves Prometheus text; plugins add routes', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const b: BackendHandle = await startBackend({
    listen: '127.0.0.1:0', http: '127.0.0.1:0', db: join(tmp.dir, 'p.db'), workers: 3, console: false, logger: quiet(),
    plugins: [(app, ctx) => { app.get('/api/test-findings', async () => ({ total: ctx.store.listFindings().total, collector: ctx.collectorAddress })) }],
  })
  t.teardown(b.close)
  const url = b.http?.url ?? ''
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+$/, 'the bound port is reported')
  const res = await fetch(`${url}/healthz`)
  t.equal(res.status, 200)
  const h = await res.json() as { status: string, bridge: { reachable: boolean, ok: boolean, workers: Array<{ alive: boolean, rttMs: number, threadId: number }> }, collector: { address: string, streams: number }, hints: string[] }
  t.equal(h.status, 'ok')
  t.equal(h.bridge.reachable, true)
  t.equal(h.bridge.ok, true)
  t.equal(h.bridge.workers.length, 3)
  t.ok(h.bridge.workers.every(w => w.alive && typeof w.rttMs === 'number' && w.threadId > 0), 'every worker alive, with its ping time')
  t.equal(h.collector.address, b.collector.address)
  t.match(h.hints.join('\n'), /no agent is connected to the collector/, 'says what to check when nothing arrives')
  const m = await fetch(`${url}/metrics`)
  t.match(m.headers.get('content-type') ?? '', /text\/plain/)
  const text = await m.text()
  for (const name of ['picket_collector_refusals_total{limit="max_batch_bytes"} 0', 'picket_detection_worker_up{worker="2"} 1', 'picket_bridge_queue_depth{worker="0"} 0', 'picket_records_per_second', 'picket_detection_latency_seconds_bucket', 'picket_backend_process_cpu_seconds_total']) {
    t.ok(text.includes(name), `metrics include ${name}`)
  }
  const api = await (await fetch(`${url}/api/test-findings`)).json()
  t.same(api, { total: 0, collector: b.collector.address }, 'a plugin route shares the store')
})

t.test('an access token guards every route; non-loopback HTTP without one refuses to start', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const token = newToken()
  const httpTokensFile = writeTokensFile(tmp.dir, { carol: token })
  const b = await startBackend({ listen: '127.0.0.1:0', http: '127.0.0.1:0', httpTokensFile, db: join(tmp.dir, 'p.db'), workers: 1, console: false, logger: quiet() })
  t.teardown(b.close)
  const url = b.http?.url ?? ''
  const no = await fetch(`${url}/metrics`)
  t.equal(no.status, 401)
  t.match(await no.json(), { error: 'PICKET_ERR_CONSOLE_TOKEN' })
  t.equal((await fetch(`${url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401)
  t.equal((await fetch(`${url}/healthz`, { headers: { authorization: `Bearer ${token}` } })).status, 200)
  t.equal((await fetch(`${url}/metrics?access_token=${token}`)).status, 200, 'EventSource cannot set headers: the query works too')
  await t.rejects(startBackend({ listen: '127.0.0.1:0', http: '0.0.0.0:0', db: join(tmp.dir, 'q.db'), workers: 1, console: false, logger: quiet() }),
    { code: 'PICKET_ERR_CONSOLE_TOKEN', message: /without an access token.*--http-tokens-file/s })
  await t.rejects(startBackend({ listen: '0.0.0.0:0', http: false, db: join(tmp.dir, 'r.db'), workers: 1, console: false, logger: quiet() }),
    { code: 'PICKET_ERR_CONFIG', message: /without mTLS.*--allow-remote/s })
  const bad = rulesDir({ 'zz.yml': 'title: x\nname: x\ncorrelation:\n  type: nope\n' })
  t.teardown(bad.cleanup)
  await t.rejects(startBackend({ listen: '127.0.0.1:0', http: false, db: join(tmp.dir, 's.db'), rulesDir: bad.dir, console: false, logger: quiet() }),
    { code: 'PICKET_ERR_RULE', message: /zz\.yml:4: unknown correlation type 'nope'/ })
})

t.test('outputs: one pino line per finding event, and the webhook gets the OCSF JSON after retries', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const got: DetectionFinding[] = []
  let calls = 0
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      calls++
      if (calls <= 2) { res.writeHead(503).end(); return }
      got.push(JSON.parse(body) as DetectionFinding)
      res.writeHead(204).end()
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const port = (server.address() as { port: number }).port
  const cap = capture()
  const b = await startBackend({
    listen: '127.0.0.1:0', http: '127.0.0.1:0', db: join(tmp.dir, 'p.db'), workers: 2, console: false,
    webhook: `http://127.0.0.1:${port}/hook`, logger: cap.logger,
  })
  t.teardown(b.close)
  const s = await injectScan({ collector: b.collector.address, hostId: 'out-host', ports: 30, seed: 5 })
  t.equal(s.batches.ok, s.batches.sent)
  await b.flush()
  const findingLines = cap.lines().filter(l => typeof l.msg === 'string' && l.msg.startsWith('finding'))
  t.equal(findingLines.filter(l => l.level === 40).length, 1, 'one warn line for the created finding')
  t.match(findingLines[0], { level: 40, msg: 'finding: Port scan of out-host from 198.51.100.7', finding: { rule: 'picket_t1046_port_scan', technique: 'T1046', host: 'out-host', activity: 'create' } })
  t.ok(findingLines.length <= 2, 'and at most one more for the update pushed by flush')
  await waitFor('the webhook to deliver', () => got.length >= 1)
  t.equal(got[0].class_uid, 2004)
  t.equal(got[0].finding_info.attacks?.[0].technique.uid, 'T1046')
  t.equal(got[0].device?.uid, 'out-host')
  t.ok(calls >= 3, 'two 503s, then delivered')
  const metrics = await (await fetch(`${b.http?.url ?? ''}/metrics`)).text()
  t.match(metrics, /picket_webhook_failures_total\{reason="http_503"\} 2\n/)
  t.match(metrics, /picket_webhook_sent_total [1-9]/)
})
