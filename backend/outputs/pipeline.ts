import type { Logger } from '../../shared/logger.js'
import type { FindingEvent } from '../detection/finding.js'
import type { Metrics } from '../metrics.js'
import type { AlertStore } from '../store/index.js'
import { logFinding } from './log.js'
import type { WebhookOutput } from './webhook.js'

// Finding events from the workers and the fleet stage, coalesced into one
// store transaction per turn of the event loop, then logged and sent to the
// webhook. Findings are rare next to records; a turn keeps latency in the
// low milliseconds while bursts still share a transaction.

export interface PipelineOptions {
  store: AlertStore
  metrics: Metrics
  logger: Logger
  webhook: WebhookOutput | undefined
}

export class FindingPipeline {
  readonly #o: PipelineOptions
  #queue: FindingEvent[] = []
  #scheduled = false
  lastAt: number | undefined

  constructor (o: PipelineOptions) {
    this.#o = o
  }

  get queued (): number { return this.#queue.length }

  push (events: readonly FindingEvent[]): void {
    if (events.length === 0) return
    for (const e of events) this.#queue.push(e)
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(() => this.flushNow())
    }
  }

  flushNow (): void {
    this.#scheduled = false
    if (this.#queue.length === 0) return
    const events = this.#queue
    this.#queue = []
    const { store, metrics, logger, webhook } = this.#o
    const t0 = performance.now()
    try {
      const changes = store.applyFindingEvents(events)
      const now = Date.now()
      metrics.storeWriteSeconds.observe({ kind: 'findings' }, (performance.now() - t0) / 1000)
      this.lastAt = now
      events.forEach((ev, i) => {
        metrics.findings.inc({ rule: ev.summary.rule, activity: ev.activity })
        if (ev.crossRecvAt !== undefined) metrics.detectionLatency.observe(Math.max(0, now - ev.crossRecvAt) / 1000)
        logFinding(logger, ev)
        const stored = changes[i]?.finding.finding
        webhook?.enqueue(stored ?? ev.finding)
      })
    } catch (err) {
      logger.error({ err, findings: events.length }, 'alert store: findings not written; they are still logged')
      for (const ev of events) logFinding(logger, ev)
    }
  }
}
