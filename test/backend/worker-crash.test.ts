import t from 'tap'
import { join } from 'node:path'
import { routeHost } from '../../backend/bridge/pool.js'
import { startBackend } from '../../backend/server.js'
import { createLogger } from '../../shared/logger.js'
import { injectScan } from '../../scripts/injector/index.js'
import { tempDir } from './helpers/records.js'

// A detection worker that dies (an out-of-memory abort, a native crash) must
// not lose a batch or touch the hosts of the other workers: its batches in
// flight are answered RETRY, the agent resends them, the slot restarts, and
// the backend process stays up. The worker really dies: an uncaught
// exception on its thread (test/fixtures/crashing-detection-worker.ts wraps
// the real worker).

t.test('a detection worker dies mid-batch: RETRY, restart, nothing lost, the other worker untouched', async t => {
  const crashHost = 'crash-host'
  let other = ''
  for (let i = 0; other === ''; i++) if (routeHost(`calm-host-${i}`, 2) !== routeHost(crashHost, 2)) other = `calm-host-${i}`
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  // a worker thread gets a copy of process.env when it starts
  const env = { CRASHING_WORKER_HOST: crashHost, CRASHING_WORKER_MARKER: join(tmp.dir, 'crashed') }
  const previous = Object.fromEntries(Object.keys(env).map(k => [k, process.env[k]]))
  Object.assign(process.env, env)
  t.teardown(() => {
    for (const [k, v] of Object.entries(previous)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
  const b = await startBackend({
    listen: '127.0.0.1:0',
    http: false as const,
    db: join(tmp.dir, 'p.db'),
    workers: 2,
    console: false as const,
    detectionWorker: new URL('../fixtures/crashing-detection-worker.ts', import.meta.url),
    logger: createLogger('test-crash', { level: 'fatal', pretty: false }),
  })
  t.teardown(b.close)

  const [crashed, calm] = await Promise.all([
    injectScan({ collector: b.collector.address, hostId: crashHost, ports: 100, batchSize: 10, seed: 11 }),
    injectScan({ collector: b.collector.address, hostId: other, ports: 100, batchSize: 10, seed: 12 }),
  ])
  t.equal(crashed.batches.ok, 10, 'every batch of the crashed worker\'s host accepted in the end')
  t.ok(crashed.batches.retried >= 1, `the batch in flight was answered RETRY and resent (${crashed.batches.retried} resent)`)
  t.equal(crashed.batches.refused, 0)
  t.equal(calm.batches.ok, 10)
  t.equal(calm.batches.retried, 0, 'the other worker\'s host never saw a RETRY')

  const slots = b.bridge.snapshot()
  t.equal(slots[routeHost(crashHost, 2)].restarts, 1, 'the dead worker was restarted once')
  t.equal(slots[routeHost(other, 2)].restarts, 0)
  t.ok(slots.every(s => s.alive), 'both workers alive again')
  // the worker gauges are refreshed every second
  const want = new RegExp(`worker="${routeHost(crashHost, 2)}"\\} 1`)
  let restarts = ''
  for (let end = Date.now() + 3000; Date.now() < end && !want.test(restarts); await new Promise(resolve => setTimeout(resolve, 100))) {
    restarts = await b.metrics.registry.getSingleMetricAsString('picket_detection_worker_restarts')
  }
  t.match(restarts, want, 'the restart is on /metrics')

  await b.flush()
  for (const h of [crashHost, other]) {
    t.equal(b.store.listFindings({ host: h }).total, 1, `${h}: one finding for its 100-port scan`)
    t.equal(b.store.getHost(h)?.records, 100, `${h}: each record counted once`)
  }
  t.equal((await b.health()).status, 'ok', 'health is ok again')
})
