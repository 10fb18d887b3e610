import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { startBackend } from '../../../backend/server.js'
import type { FindingEvent } from '../../../backend/detection/finding.js'
import { createLogger } from '../../../shared/logger.js'
import type { ChildIn, ChildOptions, ChildOut, StoredLatency } from './backend-protocol.js'

// The backend under test, in its own process (spawned by ingest.ts,
// scale.ts, the fuzzer and the reliability drills): startBackend() on an
// alert store the parent names, with HTTP only when asked, and one piece of
// instrumentation: every finding the store commits is reported
// to the parent with the time the crossing batch reached the collector
// (FindingEvent.crossRecvAt, stamped by the collector) and the time the
// store's transaction returned. Nothing in the backend is changed; the
// wrapper only reads the events on their way into the store.

const send = (m: ChildOut): void => { process.send?.(m) }
const opts = JSON.parse(process.argv[2] ?? '{}') as ChildOptions

const backend = await startBackend({
  ...opts.backend,
  listen: opts.listen ?? '127.0.0.1:0',
  http: opts.http === true ? '127.0.0.1:0' : false,
  console: false,
  db: opts.db,
  ...(opts.workers !== undefined ? { workers: opts.workers } : {}),
  ...(opts.detectionWorker !== undefined ? { detectionWorker: new URL(opts.detectionWorker) } : {}),
  logger: createLogger('picket-backend', { level: 'warn', pretty: false }),
})

let pending: StoredLatency[] = []
const store = backend.store
const apply = store.applyFindingEvents.bind(store)
store.applyFindingEvents = (events: readonly FindingEvent[], now?: number) => {
  const out = apply(events, now)
  const storedAt = Date.now()
  for (const ev of events) {
    if (ev.activity !== 'create') continue
    pending.push({ rule: ev.summary.rule, host: ev.summary.hostId ?? null, sources: ev.summary.sources.slice(0, 4), crossRecvAt: ev.crossRecvAt ?? null, storedAt })
  }
  return out
}
// reported in bulk: the timestamps are taken above, so the IPC's own pace does not matter
const timer = setInterval(() => {
  if (pending.length === 0) return
  send({ t: 'findings', list: pending })
  pending = []
}, 50)

let elu = performance.eventLoopUtilization()
// batches handed to the detection workers and not yet answered: where a wait builds up
let maxQueued = 0
const sampler = setInterval(() => {
  const q = backend.bridge.queueDepths().reduce((a, b) => a + b, 0)
  if (q > maxQueued) maxQueued = q
}, 20)
const delay = monitorEventLoopDelay({ resolution: 10 })
delay.enable()

process.on('message', (m: ChildIn) => {
  void (async () => {
    switch (m.t) {
      case 'mark':
        elu = performance.eventLoopUtilization()
        delay.reset()
        maxQueued = 0
        send({ t: 'marked' })
        break
      case 'elu': {
        const e = performance.eventLoopUtilization(elu)
        send({ t: 'elu', utilization: e.utilization, delayP99Ms: delay.percentile(99) / 1e6, maxQueued })
        break
      }
      case 'mem':
        send({ t: 'mem', usage: process.memoryUsage() })
        break
      case 'flush':
        await backend.flush()
        if (pending.length > 0) { send({ t: 'findings', list: pending }); pending = [] }
        send({ t: 'flushed' })
        break
      case 'findings': {
        const all: Array<{ rule: string, host: string | null, sources: string[] }> = []
        let cursor: string | undefined
        for (;;) {
          const page = store.listFindings({ limit: 500, ...(cursor !== undefined ? { cursor } : {}) })
          for (const f of page.items) all.push({ rule: f.rule, host: f.hostId, sources: f.sources.slice(0, 4) })
          if (page.nextCursor === undefined || page.items.length === 0) break
          cursor = page.nextCursor
        }
        send({ t: 'allFindings', list: all })
        break
      }
      case 'metrics':
        send({ t: 'metrics', text: await backend.metrics.registry.metrics() })
        break
      case 'health':
        send({ t: 'health', report: await backend.health() })
        break
      case 'stop':
        clearInterval(timer)
        clearInterval(sampler)
        await backend.close()
        process.exit(0)
    }
  })().catch((err: unknown) => {
    process.stderr.write(`backend-child: ${(err as Error).stack ?? String(err)}\n`)
    process.exit(1)
  })
})

send({ t: 'ready', address: backend.collector.address, workers: backend.options.workers, ...(backend.http !== undefined ? { http: backend.http.url } : {}) })
