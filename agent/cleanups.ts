import type { Logger } from '../shared/logger.js'

/** What start-up built, undone last-first; a step that fails is logged and the others still run. */
export class Cleanups {
  readonly #steps: Array<() => Promise<void> | void> = []
  readonly #log: Logger

  constructor (log: Logger) {
    this.#log = log
  }

  push (step: () => Promise<void> | void): void {
    this.#steps.push(step)
  }

  async run (): Promise<void> {
    const steps = this.#steps.splice(0).reverse()
    for (const f of steps) {
      try { await f() } catch (err) { this.#log.warn({ err }, 'cleanup step failed') }
    }
  }
}
