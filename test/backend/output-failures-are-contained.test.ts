import t from 'tap'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { createLogger, type Logger } from '../../shared/logger.js'
import { startBackend } from '../../backend/server.js'
import { injectScan } from '../../scripts/injector/index.js'
import { tempDir } from './helpers/records.js'

// A finding's outputs fail on their own. A log line that throws used to be
// caught and then logged again inside setImmediate, which threw out of the
// event loop and stopped the backend. Now a webhook that refuses every
// finding, and a log output that throws on every finding, are each counted
// in picket_output_failures_total, and findings are still stored, scan
// after scan.

const tmp = tempDir('picket-outputs-')
t.teardown(tmp.cleanup)

/** A logger whose finding lines throw, as a broken log destination would. */
function brokenFindingLog (): Logger {
  const base = createLogger('test-outputs', { level: 'fatal', pretty: false })
  return new Proxy(base, {
    get (target, prop, receiver) {
      if (prop === 'warn' || prop === 'info') {
        return (obj: unknown, ...rest: unknown[]) => {
          if (typeof obj === 'object' && obj !== null && 'finding' in obj) throw new Error('the log destination is gone')
          return (target[prop] as (...a: unknown[]) => void).call(target, obj, ...rest)
        }
      }
      const v = Reflect.get(target, prop, receiver) as unknown
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v
    },
  })
}

t.test('a webhook that refuses and a log output that throws are counted, and findings are still stored', async t => {
  let posts = 0
  const receiver = createServer((req, res) => {
    posts++
    req.resume()
    req.on('end', () => { res.writeHead(400).end('no') })
  })
  await new Promise<void>(resolve => receiver.listen(0, '127.0.0.1', resolve))
  t.teardown(() => receiver.close())
  const addr = receiver.address() as { port: number }

  const be = await startBackend({
    listen: '127.0.0.1:0',
    http: '127.0.0.1:0',
    db: join(tmp.dir, 'picket.db'),
    workers: 1,
    console: false,
    webhook: `http://127.0.0.1:${addr.port}/findings`,
    logger: brokenFindingLog(),
  })
  t.teardown(be.close)
  const failures = async (output: string): Promise<number> => {
    const text = await (await fetch(`${be.http?.url ?? ''}/metrics`)).text()
    return Number(new RegExp(`^picket_output_failures_total\\{output="${output}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 'NaN')
  }

  for (const [i, hostId] of ['out-a', 'out-b'].entries()) {
    const r = await injectScan({ collector: be.collector.address, hostId, ports: 20, seed: 21 + i })
    t.equal(r.batches.ok, r.batches.sent, `${hostId}: every batch acked`)
    await be.flush()
    t.equal(be.store.listFindings({ host: hostId }).total, 1, `${hostId}: its finding is stored`)
  }
  const end = Date.now() + 10_000
  while (await failures('webhook') < 2 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 50))
  t.ok(posts >= 2, 'the webhook was tried for each finding')
  t.ok(await failures('log') >= 2, 'each finding the log output threw on is counted')
  t.ok(await failures('webhook') >= 2, 'each finding the webhook refused is counted')
  t.equal(await failures('console'), 0)
  t.equal((await be.health()).status, 'ok', 'the backend is healthy')
})
