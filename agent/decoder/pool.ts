import { Piscina } from 'piscina'
import { siblingModule } from '../../shared/paths.js'
import type { DecodeOutput, DecoderWorkerData, DecodeTask } from '../protocol.js'

// The decoder pool. A task whose worker dies (a crash, an out-of-memory
// exit) is run again on a fresh worker: the slab is still in shared memory
// and is only freed once a decode succeeded, so no record is lost. A slab
// that kills its worker `maxAttempts` times is given up and its records are
// counted as decode errors.

export interface DecoderPoolOptions {
  threads: number
  workerData: DecoderWorkerData
  maxAttempts?: number
  /** called when a task is retried after its worker failed */
  onRetry?: (err: Error, attempt: number) => void
}

export class DecoderPool {
  readonly #pool: Piscina<DecodeTask, DecodeOutput>
  readonly #maxAttempts: number
  readonly #onRetry: ((err: Error, attempt: number) => void) | undefined
  #retries = 0
  #failed = 0
  #pending = 0

  constructor (opts: DecoderPoolOptions) {
    this.#maxAttempts = opts.maxAttempts ?? 3
    this.#onRetry = opts.onRetry
    this.#pool = new Piscina<DecodeTask, DecodeOutput>({
      filename: siblingModule(import.meta.url, './worker').href,
      name: 'default',
      minThreads: opts.threads,
      maxThreads: opts.threads,
      idleTimeout: Infinity,
      workerData: opts.workerData,
      // decoding makes short-lived objects by the thousand: a bigger young
      // generation lets them die there instead of being copied around
      resourceLimits: { maxYoungGenerationSizeMb: 48 },
    })
    // piscina reports worker deaths both to the task and here; the task retry handles it
    this.#pool.on('error', () => {})
  }

  /** Decode one slab; resolves once a worker succeeded, rejects after maxAttempts failures. */
  async decode (task: DecodeTask): Promise<DecodeOutput> {
    this.#pending++
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await this.#pool.run(task)
        } catch (err) {
          if (attempt >= this.#maxAttempts) {
            this.#failed++
            throw err
          }
          this.#retries++
          this.#onRetry?.(err as Error, attempt)
        }
      }
    } finally {
      this.#pending--
    }
  }

  stats (): { pending: number, queued: number, threads: number, completed: number, utilization: number, retries: number, failed: number } {
    return {
      pending: this.#pending,
      queued: this.#pool.queueSize,
      threads: this.#pool.threads.length,
      completed: this.#pool.completed,
      utilization: this.#pool.utilization,
      retries: this.#retries,
      failed: this.#failed,
    }
  }

  async close (): Promise<void> {
    await this.#pool.close()
  }
}
