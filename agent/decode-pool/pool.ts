import { Piscina } from 'piscina'
import { PicketError } from '../../shared/errors.js'
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
  /** the decoder worker module (default ./worker); tests pass a wrapper */
  worker?: URL
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
    const filename = opts.worker ?? siblingModule(import.meta.url, './worker')
    // running from TypeScript sources: piscina's workers import the task
    // module after start-up, so tsx preloaded in them handles .ts
    const tsx = filename.pathname.endsWith('.ts') && !process.execArgv.some(a => a.includes('tsx'))
    this.#pool = new Piscina<DecodeTask, DecodeOutput>({
      filename: filename.href,
      ...(tsx ? { execArgv: [...process.execArgv, '--import', import.meta.resolve('tsx')] } : {}),
      name: 'default',
      minThreads: opts.threads,
      maxThreads: opts.threads,
      idleTimeout: Infinity,
      workerData: opts.workerData,
      // decoding makes short-lived objects by the thousand: a bigger young
      // generation lets them die there instead of being copied around
      resourceLimits: { maxYoungGenerationSizeMb: 48 },
      // batches are committed in slab order: a task piscina sends to the back
      // of its queue (its default when no worker is free) holds up every
      // batch behind it, in memory. Strict FIFO keeps slab order.
      stricterFIFO: true,
    })
    // piscina reports worker deaths both to the task and here; the task retry handles it
    this.#pool.on('error', () => {})
  }

  /**
   * Run an empty task on every thread: piscina gives up on workers that fail
   * while starting and would leave tasks queued forever, so find out now.
   */
  async ready (timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => { reject(new PicketError('PICKET_ERR_DECODE', `decoder workers did not start within ${timeoutMs} ms`)) }, timeoutMs)
    })
    const empty: DecodeTask = { ring: '', offset: 0, bytes: 0, records: 0, bootToWallNs: 0 }
    try {
      await Promise.race([Promise.all(Array.from({ length: this.#pool.maxThreads }, async () => await this.#pool.run(empty))), timeout])
    } catch (err) {
      if (err instanceof PicketError) throw err
      throw new PicketError('PICKET_ERR_DECODE', `decoder workers cannot start: ${(err as Error).message}`)
    } finally {
      clearTimeout(timer)
    }
  }

  /** Decode one slab; resolves once a worker succeeded, rejects after maxAttempts failures. */
  async decode (task: DecodeTask): Promise<DecodeOutput> {
    this.#pending++
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          // a retry writes into the same arena region: the worker that failed is done with it
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
