import t from 'tap'
import { join } from 'node:path'
import { createLogger } from '../../shared/logger.js'
import type { FindingEvent } from '../../backend/detection/finding.js'
import { createMetrics, type Metrics } from '../../backend/metrics.js'
import { FindingPipeline } from '../../backend/outputs/pipeline.js'
import { AlertStore } from '../../backend/store/index.js'
import { EngineRig, ports, SHIPPED_RULES, tempDir } from './helpers/records.js'

// The finding pipeline between the detection plane and the store. push()
// resolves only once its events are committed (the bridge acks a batch
// then). A store that fails for a while (busy, locked, full) keeps the
// events queued and the push waiting, and nothing is lost when it recovers;
// an event the store can never take is dropped and counted without holding
// up the others; a console listener that throws cannot make a commit look
// failed.

const T0 = 1_800_000_000_000
const logger = createLogger('test-pipeline', { level: 'fatal', pretty: false })

function scan (host: string, src: string): FindingEvent[] {
  const rig = new EngineRig(SHIPPED_RULES)
  rig.send(host, ports(20).map((p, i) => ({ t: T0 + i, src, port: p })), T0 + 100)
  return rig.findings
}

async function count (m: Metrics, name: 'storeFailures' | 'outputFailures', labels: Record<string, string>): Promise<number> {
  const v = (await m[name].get()).values.find(x => Object.entries(labels).every(([k, want]) => x.labels[k] === want))
  return v?.value ?? 0
}

function rig (t: Tap.Test): { store: AlertStore, metrics: Metrics, pipeline: FindingPipeline } {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const metrics = createMetrics()
  const store = AlertStore.open(join(tmp.dir, 'picket.db'))
  t.teardown(() => store.close())
  const pipeline = new FindingPipeline({ store, metrics, logger, webhook: undefined, retryMs: 20, maxRetryMs: 50 })
  t.teardown(() => pipeline.stop())
  return { store, metrics, pipeline }
}

t.test('a store that is busy for a while: the push waits, then the finding is there once', async t => {
  const { store, metrics, pipeline } = rig(t)
  const apply = store.applyFindingEvents.bind(store)
  let busy = 3
  store.applyFindingEvents = (events, now) => {
    if (busy-- > 0) throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })
    return apply(events, now)
  }
  const evs = scan('busy-host', '198.51.100.5')
  let done = false
  const pushed = pipeline.push(evs).then(() => { done = true })
  await new Promise(resolve => setTimeout(resolve, 5))
  t.equal(done, false, 'not resolved while the store fails')
  t.equal(store.listFindings({ host: 'busy-host' }).total, 0)
  const later = pipeline.push(scan('later-host', '198.51.100.6'))
  await pushed
  await later
  t.equal(store.listFindings({ host: 'busy-host' }).total, 1, 'stored once the store took it')
  t.equal(store.listFindings({ host: 'later-host' }).total, 1, 'and what came after it, in order')
  t.equal(await count(metrics, 'storeFailures', { kind: 'findings', outcome: 'retried' }), 3, 'each failed attempt counted')
  t.equal(pipeline.queued, 0)
})

t.test('an event the store can never take is dropped and counted; the rest of its transaction is stored', async t => {
  const { store, metrics, pipeline } = rig(t)
  const [a] = scan('good-a', '198.51.100.7')
  const [b] = scan('good-b', '198.51.100.8')
  const [bad] = scan('bad-host', '198.51.100.9')
  bad.summary.firstSeen = NaN // NOT NULL: SQLite stores NaN as NULL
  await Promise.all([pipeline.push([a]), pipeline.push([bad]), pipeline.push([b])])
  t.equal(store.listFindings({ host: 'good-a' }).total, 1)
  t.equal(store.listFindings({ host: 'good-b' }).total, 1)
  t.equal(store.listFindings({ host: 'bad-host' }).total, 0)
  t.equal(await count(metrics, 'storeFailures', { kind: 'findings', outcome: 'dropped' }), 1)
})

t.test('a store listener that throws does not undo the commit nor make it look failed', async t => {
  const tmp = tempDir()
  t.teardown(tmp.cleanup)
  const errors: string[] = []
  const store = AlertStore.open(join(tmp.dir, 'picket.db'), { onListenerError: (err, event) => errors.push(`${event}: ${err.message}`) })
  t.teardown(() => store.close())
  const heard: string[] = []
  store.on('finding', () => { throw new Error('console gone') })
  store.on('finding', c => heard.push(c.kind))
  const metrics = createMetrics()
  const pipeline = new FindingPipeline({ store, metrics, logger, webhook: undefined })
  await pipeline.push(scan('listened-host', '198.51.100.10'))
  t.equal(store.listFindings({ host: 'listened-host' }).total, 1)
  t.same(heard, ['created'], 'the other listener still heard of it')
  t.same(errors, ['finding: console gone'])
  t.equal(await count(metrics, 'storeFailures', { kind: 'findings', outcome: 'retried' }), 0, 'not taken for a failed write')
})
