import type { Logger } from '../shared/logger.js'

// One log line per key (a refusal reason, an HTTP refusal) per interval. A
// client that sends a thousand bad batches a second must not be able to fill
// the disk or bury every other line; the counters on /metrics count each
// event, and the log says what happened and how often. What is held back is
// not lost: every line carries `suppressed`, how many events of its key were
// not logged before it since the key's last line. When the interval runs out
// (or the process stops) with events held back, the newest of them is
// logged, so a burst that then stops is still counted within the interval.

type Level = 'warn' | 'error'

interface Key {
  lastAt: number
  suppressed: number
  /** the newest held-back event, for the summary line */
  held: { level: Level, obj: Record<string, unknown>, msg: string } | undefined
  timer: NodeJS.Timeout | undefined
}

export class LogLimiter {
  readonly #log: Logger
  readonly #intervalMs: number
  readonly #keys = new Map<string, Key>()

  constructor (log: Logger, intervalMs = 10_000) {
    this.#log = log
    this.#intervalMs = intervalMs
  }

  warn (key: string, obj: Record<string, unknown>, msg: string): void { this.#event('warn', key, obj, msg) }
  error (key: string, obj: Record<string, unknown>, msg: string): void { this.#event('error', key, obj, msg) }

  #event (level: Level, key: string, obj: Record<string, unknown>, msg: string): void {
    const now = Date.now()
    const k = this.#keys.get(key)
    if (k === undefined || now - k.lastAt >= this.#intervalMs) {
      const suppressed = k?.suppressed ?? 0
      if (k?.timer !== undefined) clearTimeout(k.timer)
      this.#keys.set(key, { lastAt: now, suppressed: 0, held: undefined, timer: undefined })
      this.#log[level]({ ...obj, suppressed }, msg)
      return
    }
    k.suppressed++
    k.held = { level, obj, msg }
    if (k.timer === undefined) {
      k.timer = setTimeout(() => { this.#summary(key) }, k.lastAt + this.#intervalMs - now)
      k.timer.unref()
    }
  }

  #summary (key: string): void {
    const k = this.#keys.get(key)
    if (k === undefined) return
    k.timer = undefined
    if (k.held === undefined) return
    const { level, obj, msg } = k.held
    const others = k.suppressed - 1
    const span = this.#intervalMs >= 1000 ? `${Math.round(this.#intervalMs / 1000)} s` : `${this.#intervalMs} ms`
    this.#log[level]({ ...obj, suppressed: others }, others > 0 ? `${msg} (and ${others} more like this in the last ${span})` : msg)
    // the summary counts as the key's line: the next one waits a full interval
    this.#keys.set(key, { lastAt: Date.now(), suppressed: 0, held: undefined, timer: undefined })
  }

  /** Log what is held back now (at shutdown) and forget every key. */
  flush (): void {
    for (const [key, k] of this.#keys) {
      if (k.timer !== undefined) clearTimeout(k.timer)
      this.#summary(key)
    }
    this.#keys.clear()
  }
}
