// Exponential backoff with "equal jitter": half the step is fixed, half is
// random, so a fleet that lost its collector at the same moment does not
// come back in lockstep, and no retry comes immediately.

export interface BackoffOptions {
  initialMs: number
  maxMs: number
}

export class Backoff {
  readonly #initial: number
  readonly #max: number
  #attempt = 0

  constructor (opts: BackoffOptions) {
    this.#initial = opts.initialMs
    this.#max = opts.maxMs
  }

  /** The delay before the next attempt; each call doubles the step up to maxMs. */
  next (): number {
    const step = Math.min(this.#max, this.#initial * 2 ** Math.min(this.#attempt, 30))
    this.#attempt++
    return step / 2 + Math.random() * step / 2
  }

  reset (): void {
    this.#attempt = 0
  }

  get attempt (): number {
    return this.#attempt
  }
}
