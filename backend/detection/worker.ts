import { monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'
import { workerData } from 'node:worker_threads'
import { internalRefusal } from './admission.js'
import { DetectionEngine } from './engine.js'
import type { BatchOutcome, FromWorker, ToWorker, WorkerInit, WorkerStats } from './protocol.js'
import { applyCaptions } from './rules/captions.js'
import { compileRuleSet } from './rules/compile.js'

// Detection worker entry: owns the actors of the hosts routed to it.

const init = workerData as WorkerInit
const port = init.port

function send (m: FromWorker): void {
  port.postMessage(m)
}

let engine: DetectionEngine
try {
  const rules = applyCaptions(compileRuleSet({ docs: init.docs, files: init.files }, { timing: init.timing }), init.captions)
  engine = new DetectionEngine(rules, { limits: init.limits, productVersion: init.productVersion, fleetRefreshMs: init.fleetRefreshMs, memoryBytes: init.memoryBytes })
} catch (err) {
  send({ t: 'fatal', message: `detection worker ${init.index} could not compile the rules: ${(err as Error).message}` })
  throw err
}

let internalErrors = 0
const delay = monitorEventLoopDelay({ resolution: 10 })
delay.enable()

function stats (reset = true): WorkerStats {
  const s: WorkerStats = { ...engine.stats, evictions: { ...engine.stats.evictions }, loopDelayMs: Math.round(delay.percentile(99) / 1e6), internalErrors, heapBytes: getHeapStatistics().used_heap_size }
  if (reset) delay.reset()
  return s
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'batch': {
      const t0 = performance.now()
      const now = Date.now()
      let outcome: BatchOutcome
      try {
        outcome = engine.processBatch({ hostId: m.hostId, hostname: m.hostname, instance: m.instance, seq: m.seq, count: m.count, bytes: new Uint8Array(m.buf, m.off, m.len), context: new Uint8Array(m.buf, m.ctxOff, m.ctxLen), recvAt: m.recvAt, floors: m.floors }, now)
      } catch (err) {
        // a bug must not turn one batch into a crash loop (the agent would
        // resend it to every restarted worker): refuse it and keep going
        outcome = internalRefusal(init.index, err as Error)
        internalErrors++
      }
      const out = engine.drain()
      send({
        t: 'done',
        id: m.id,
        outcome,
        findings: out.findings.length > 0 ? out.findings : undefined,
        fleet: out.fleet.length > 0 ? out.fleet : undefined,
        busyMs: performance.now() - t0,
      })
      break
    }
    case 'skip':
      engine.skipSeq(m.hostId, m.instance, m.seq, Date.now(), m.floors)
      break
    case 'forget':
      engine.forget(m.hosts)
      break
    case 'ping':
      send({ t: 'pong', id: m.id, stats: stats(false) })
      break
    case 'flush': {
      const now = Date.now()
      engine.tick(now)
      engine.flush(now)
      const out = engine.drain()
      if (out.findings.length > 0 || out.fleet.length > 0) send({ t: 'emit', findings: out.findings, fleet: out.fleet })
      send({ t: 'flushed', id: m.id })
      break
    }
    case 'stop': {
      // last word: pending updates, fleet reports and the dedup floors to persist
      clearInterval(ticker)
      clearInterval(summarizer)
      const now = Date.now()
      engine.flush(now)
      const out = engine.drain()
      if (out.findings.length > 0 || out.fleet.length > 0) send({ t: 'emit', findings: out.findings, fleet: out.fleet })
      send({ t: 'summary', hosts: engine.takeHostSummaries(), stats: stats() })
      port.close()
      break
    }
  }
})

const ticker = setInterval(() => {
  engine.tick(Date.now())
  const out = engine.drain()
  if (out.findings.length > 0 || out.fleet.length > 0) send({ t: 'emit', findings: out.findings, fleet: out.fleet })
}, init.tickMs)

const summarizer = setInterval(() => {
  send({ t: 'summary', hosts: engine.takeHostSummaries(), stats: stats() })
}, 1000)

send({ t: 'ready', index: init.index, rules: engine.rules.correlations.length, fields: engine.rules.paths.length })
