import type { Logger } from '../../shared/logger.js'
import type { FindingEvent } from '../detection/finding.js'
import type { Metrics } from '../metrics.js'
import type { AlertStore, FindingChange } from '../store/index.js'
import { logFinding } from './log.js'
import type { WebhookOutput } from './webhook.js'

// Finding events from the workers and the fleet stage, coalesced into one
// store transaction per turn of the event loop, then logged and sent to the
// webhook. Findings are rare next to records; a turn keeps latency in the
// low milliseconds while bursts still share a transaction.
//
// push() resolves once its events are committed: the bridge acks a batch
// only then, so a finding is never lost to a crash after its ack. A
// transaction that fails for a reason that can pass (the file busy, locked
// or full, an I/O error) leaves its events queued, in order, and is tried
// again with backoff; the acks wait. An event the store can never take (a
// constraint, a value SQLite cannot bind) is found by writing the events one
// by one, and dropped, logged and counted, so that it cannot hold up the
// rest for ever. Each output runs on its own: one that throws is counted and
// stops neither the store nor the other outputs.

export interface PipelineOptions {
  store: AlertStore
  metrics: Metrics
  logger: Logger
  webhook: WebhookOutput | undefined
  /** first wait before a failed transaction is tried again, ms; it doubles up to maxRetryMs */
  retryMs?: number
  maxRetryMs?: number
}

/** SQLite result codes an event itself causes: trying again cannot help. */
const UNSTORABLE = /^SQLITE_(CONSTRAINT|MISMATCH|TOOBIG|RANGE)/

function unstorable (err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  // better-sqlite3 raises SqliteError with a code; a value it cannot bind is a TypeError or RangeError
  return typeof code === 'string' ? UNSTORABLE.test(code) : err instanceof TypeError || err instanceof RangeError
}

export class FindingPipeline {
  readonly #o: Required<PipelineOptions>
  #queue: FindingEvent[] = []
  /** events ever pushed, and ever settled (committed, or dropped as unstorable) */
  #pushed = 0
  #settled = 0
  readonly #waiters: Array<{ upTo: number, resolve: () => void }> = []
  #scheduled = false
  #retry: NodeJS.Timeout | undefined
  #failures = 0
  #stopped = false
  lastAt: number | undefined

  constructor (o: PipelineOptions) {
    this.#o = { retryMs: 100, maxRetryMs: 5000, ...o }
  }

  get queued (): number { return this.#queue.length }

  /** The last write of findings failed and waits to be tried again. */
  get failing (): boolean { return this.#failures > 0 }

  /** A mark of everything pushed so far: stored(mark) says when all of it is in the store. */
  get mark (): number { return this.#pushed }

  stored (mark: number): boolean { return this.#settled >= mark }

  /** Queue events for the store. Resolves once they are committed (or dropped as unstorable); never rejects. */
  async push (events: readonly FindingEvent[]): Promise<void> {
    if (events.length === 0) return
    for (const e of events) this.#queue.push(e)
    this.#pushed += events.length
    const upTo = this.#pushed
    if (!this.#scheduled && this.#retry === undefined) {
      this.#scheduled = true
      setImmediate(() => this.flushNow())
    }
    await new Promise<void>(resolve => this.#waiters.push({ upTo, resolve }))
  }

  /** Resolves once everything pushed so far is committed (or dropped as unstorable). */
  async settled (): Promise<void> {
    const upTo = this.#pushed
    if (this.#settled >= upTo) return
    await new Promise<void>(resolve => this.#waiters.push({ upTo, resolve }))
  }

  /** Write what is queued now (a retry waiting for its time goes now too). */
  flushNow (): void {
    this.#scheduled = false
    if (this.#retry !== undefined) { clearTimeout(this.#retry); this.#retry = undefined }
    if (this.#queue.length === 0) return
    const events = this.#queue
    this.#queue = []
    const t0 = performance.now()
    let changes: FindingChange[]
    try {
      changes = this.#o.store.applyFindingEvents(events)
    } catch (err) {
      if (unstorable(err)) this.#oneByOne(events)
      else this.#failed(events, err)
      return
    }
    this.#o.metrics.storeWriteSeconds.observe({ kind: 'findings' }, (performance.now() - t0) / 1000)
    this.#committed(events, changes)
  }

  /** A transaction failed on some event: write them alone, to keep every event but the bad ones. */
  #oneByOne (events: FindingEvent[]): void {
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]
      let changes: FindingChange[]
      try {
        changes = this.#o.store.applyFindingEvents([ev])
      } catch (err) {
        if (!unstorable(err)) { this.#failed(events.slice(i), err); return }
        this.#o.metrics.storeFailures.inc({ kind: 'findings', outcome: 'dropped' })
        this.#o.logger.error({ err, finding: ev.summary.id, rule: ev.summary.rule, activity: ev.activity }, 'alert store: this finding event can never be stored; it was dropped (a Picket bug: please report it with this line)')
        this.#settle(1)
        continue
      }
      this.#committed([ev], changes)
    }
  }

  /** The store cannot take events now: keep them first in line and try again later. */
  #failed (events: FindingEvent[], err: unknown): void {
    this.#queue = events.concat(this.#queue)
    this.#failures++
    const delay = Math.min(this.#o.maxRetryMs, this.#o.retryMs * 2 ** Math.min(this.#failures - 1, 16))
    this.#o.metrics.storeFailures.inc({ kind: 'findings', outcome: 'retried' })
    if (this.#stopped) {
      this.#o.logger.error({ err, findings: this.#queue.length }, 'alert store: findings not written at shutdown; the batches that caused them were not acked, and the agents resend them')
      return
    }
    this.#o.logger.error({ err, findings: this.#queue.length, retryInMs: delay }, 'alert store: findings not written; they stay queued and the batches that caused them stay unacked until the store takes them')
    this.#retry = setTimeout(() => { this.#retry = undefined; this.flushNow() }, delay)
  }

  /** Shutdown: write what is queued one last time, and try no more. */
  stop (): void {
    this.#stopped = true
    this.flushNow()
  }

  #committed (events: FindingEvent[], changes: FindingChange[]): void {
    this.#failures = 0
    // stored: the acks waiting for these no longer depend on what follows
    this.#settle(events.length)
    const now = Date.now()
    this.lastAt = now
    const { metrics, logger, webhook } = this.#o
    events.forEach((ev, i) => {
      this.#output(undefined, ev, () => {
        metrics.findings.inc({ rule: ev.summary.rule, activity: ev.activity })
        if (ev.crossRecvAt !== undefined) metrics.detectionLatency.observe(Math.max(0, now - ev.crossRecvAt) / 1000)
      })
      this.#output('log', ev, () => logFinding(logger, ev))
      if (webhook !== undefined) this.#output('webhook', ev, () => webhook.enqueue(changes[i]?.finding.finding ?? ev.finding))
    })
  }

  /** Run one output (or, with none named, the pipeline's own bookkeeping) on a stored finding; a failure is counted and goes no further. */
  #output (output: 'log' | 'webhook' | undefined, ev: FindingEvent, send: () => void): void {
    try {
      send()
    } catch (err) {
      if (output !== undefined) this.#o.metrics.outputFailures.inc({ output })
      else this.#o.metrics.internalErrors.inc({ where: 'pipeline' })
      try {
        this.#o.logger.error({ err, output, finding: ev.summary.id }, `${output !== undefined ? `the ${output} output` : 'the finding pipeline'} failed on a finding; the finding is stored`)
      } catch {
        // the logger is the output that failed: the counter above is what is left
      }
    }
  }

  #settle (n: number): void {
    this.#settled += n
    while (this.#waiters.length > 0 && this.#waiters[0].upTo <= this.#settled) (this.#waiters.shift() as { resolve: () => void }).resolve()
  }
}
