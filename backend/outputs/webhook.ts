import type { Logger } from '../../shared/logger.js'
import type { DetectionFinding } from '../../shared/ocsf/types.js'
import type { Metrics } from '../metrics.js'

// POSTs each finding's OCSF JSON to a URL, in order, one request at a time.
// A failed POST is retried with exponential backoff and jitter; a 4xx other
// than 408/429 is final. The queue is bounded: when it is full the oldest
// finding is dropped and counted, so a dead receiver cannot grow the backend.
// A finding the webhook never delivers counts in
// picket_output_failures_total{output="webhook"}; nothing here throws out of
// the delivery loop.

export interface WebhookOptions {
  url: string
  logger: Logger
  metrics: Metrics
  maxQueue?: number
  maxAttempts?: number
  timeoutMs?: number
  baseDelayMs?: number
  maxDelayMs?: number
  headers?: Record<string, string>
}

export class WebhookOutput {
  readonly #o: Required<WebhookOptions>
  readonly #queue: DetectionFinding[] = []
  #running = false
  #closed = false
  #wake: (() => void) | undefined
  #idle: Promise<void> = Promise.resolve()
  #lastDropLog = 0

  constructor (opts: WebhookOptions) {
    this.#o = { maxQueue: 1000, maxAttempts: 8, timeoutMs: 5000, baseDelayMs: 500, maxDelayMs: 30_000, headers: {}, ...opts }
  }

  get queued (): number { return this.#queue.length }

  enqueue (finding: DetectionFinding): void {
    if (this.#closed) return
    if (this.#queue.length >= this.#o.maxQueue) {
      this.#queue.shift()
      this.#dropped()
      const now = Date.now()
      if (now - this.#lastDropLog > 10_000) {
        this.#lastDropLog = now
        this.#o.logger.error({ url: this.#o.url, queue: this.#o.maxQueue }, 'webhook queue full: dropping the oldest findings; check that the receiver is up')
      }
    }
    this.#queue.push(finding)
    this.#o.metrics.webhookQueue.set(this.#queue.length)
    if (!this.#running) this.#idle = this.#run()
  }

  async #run (): Promise<void> {
    this.#running = true
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const f = this.#queue[0]
        let ok = false
        try {
          ok = await this.#deliver(f)
        } catch (err) {
          // a finding that cannot be sent (or a logger that throws) costs that finding, not the loop
          try { this.#o.logger.error({ err, url: this.#o.url }, 'webhook: a finding could not be sent') } catch {}
        }
        if (this.#queue[0] === f) this.#queue.shift()
        if (!ok) this.#dropped()
        this.#o.metrics.webhookQueue.set(this.#queue.length)
      }
    } finally {
      this.#running = false
    }
  }

  #dropped (): void {
    this.#o.metrics.webhookDropped.inc()
    this.#o.metrics.outputFailures.inc({ output: 'webhook' })
  }

  async #deliver (f: DetectionFinding): Promise<boolean> {
    const o = this.#o
    const body = JSON.stringify(f)
    for (let attempt = 1; attempt <= o.maxAttempts; attempt++) {
      let reason: string
      let final = false
      try {
        const res = await fetch(o.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'picket-backend', ...o.headers },
          body,
          signal: AbortSignal.timeout(o.timeoutMs),
        })
        await res.arrayBuffer().catch(() => undefined)
        if (res.ok) { o.metrics.webhookSent.inc(); return true }
        reason = `http_${res.status}`
        final = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429
      } catch (err) {
        reason = (err as Error).name === 'TimeoutError' ? 'timeout' : 'network'
      }
      o.metrics.webhookFailures.inc({ reason })
      if (final || attempt === o.maxAttempts || this.#closed) {
        o.logger.error({ url: o.url, finding: f.finding_info.uid, reason, attempts: attempt }, final ? 'webhook refused the finding; not retrying' : 'webhook delivery failed; giving up on this finding')
        return false
      }
      const delay = Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2)
      o.logger.warn({ url: o.url, finding: f.finding_info.uid, reason, attempt, retryInMs: Math.round(delay) }, 'webhook delivery failed; retrying')
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, delay)
        this.#wake = () => { clearTimeout(t); resolve() }
      })
      this.#wake = undefined
    }
    return false
  }

  /** Give queued findings up to `graceMs` to go out, then stop. */
  async close (graceMs = 2000): Promise<void> {
    const deadline = new Promise<void>(resolve => setTimeout(resolve, graceMs).unref())
    await Promise.race([this.#idle, deadline])
    this.#closed = true
    this.#wake?.()
    await this.#idle.catch(() => undefined)
  }
}
