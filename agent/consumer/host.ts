import * as Comlink from 'comlink'
import { MessageChannel, Worker } from 'node:worker_threads'
import { siblingModule } from '../../shared/paths.js'
import { workerScript } from '../../shared/worker-script.js'
import { nodeEndpoint } from '../comlink-node.js'
import type { ConsumerApi, ConsumerInit, ConsumerStats, ConsumerTuning, SlabDescriptor, SourceSpec } from '../protocol.js'
import type { ProcTableShape } from '../proctable/table.js'
import type { SlabPool } from '../slabs.js'

// The main thread's handle on one consumer thread: it owns the ring's slab
// pool, receives slab descriptors, frees slabs, and talks to the thread over
// comlink for stats, reconfiguration and stop.

export interface ConsumerOptions {
  ring: string
  source: SourceSpec
  /** the ring's slabs; the decoders read the same memory */
  pool: SlabPool
  maxRecordBytes: number
  tuning: ConsumerTuning
  onSlab: (d: SlabDescriptor) => void
  /** the thread died (an exception, not a stop) */
  onError: (err: Error) => void
  /** the process ring: the table its thread keeps (agent/proctable/writer.ts) */
  procTable?: ProcTableShape
}

export class Consumer {
  readonly ring: string
  readonly pool: SlabPool
  readonly #worker: Worker
  readonly #api: Comlink.Remote<ConsumerApi>
  readonly #control: MessageChannel
  #last: ConsumerStats
  #exited = false
  #dead = false
  readonly #exit: Promise<void>
  /** slabs received on the worker's port; its stop reply comes on another port and may overtake the last ones */
  #received = 0
  #waitFor: { count: number, resolve: () => void } | undefined

  constructor (opts: ConsumerOptions) {
    this.ring = opts.ring
    this.pool = opts.pool
    this.#control = new MessageChannel()
    const init: ConsumerInit = {
      ring: opts.ring,
      source: opts.source,
      slabs: this.pool.shape,
      tuning: opts.tuning,
      maxRecordBytes: opts.maxRecordBytes,
      control: this.#control.port2,
      ...(opts.procTable !== undefined ? { procTable: opts.procTable } : {}),
    }
    const { script, eval: isEval } = workerScript(siblingModule(import.meta.url, './worker'))
    this.#worker = new Worker(script, {
      eval: isEval,
      workerData: init,
      transferList: [this.#control.port2],
      name: `picket-consumer-${opts.ring}`,
    })
    this.#worker.on('message', (d: SlabDescriptor) => {
      this.#received++
      opts.onSlab(d)
      if (this.#waitFor !== undefined && this.#received >= this.#waitFor.count) this.#waitFor.resolve()
    })
    this.#worker.on('error', (err: Error) => { this.#dead = true; opts.onError(err) })
    this.#exit = new Promise(resolve => this.#worker.once('exit', () => { this.#exited = this.#dead = true; resolve() }))
    this.#api = Comlink.wrap<ConsumerApi>(nodeEndpoint(this.#control.port1))
    this.#last = {
      ring: opts.ring, drainCalls: 0, records: 0, bytes: 0, slabsHandedOff: 0, starvationEvents: 0, starvationMs: 0,
      starved: false, freeSlabs: opts.pool.count, ringPendingBytes: 0, stopped: false,
    }
  }

  /** The slab's records are decoded: the consumer may fill it again. */
  release (slab: number): void {
    this.pool.release(slab)
  }

  /** A call to the thread, or undefined if it is (or becomes) gone: a dead thread never answers. */
  async #call<T> (f: () => Promise<T>): Promise<T | undefined> {
    if (this.#dead) return undefined
    return await Promise.race([f(), this.#exit.then(() => undefined)])
  }

  /** Fresh stats from the thread (falls back to the last ones once it is gone). */
  async stats (): Promise<ConsumerStats> {
    this.#last = await this.#call(async () => await this.#api.stats()) ?? this.#last
    return this.#last
  }

  get lastStats (): ConsumerStats {
    return this.#last
  }

  async reconfigure (t: Partial<ConsumerTuning>): Promise<ConsumerTuning> {
    const r = await this.#call(async () => await this.#api.reconfigure(t))
    if (r === undefined) throw new Error(`the ${this.ring} consumer thread is gone`)
    return r
  }

  /** Drain what waits in the ring (up to timeoutMs), hand off the last slab, stop. */
  async stop (timeoutMs: number): Promise<ConsumerStats> {
    this.#last = await this.#call(async () => await this.#api.stop(timeoutMs)) ?? this.#last
    // the stop reply travels on the control port, the slabs on the worker's
    // own port: wait for every slab it says it handed off (or for its exit)
    const count = this.#last.slabsHandedOff
    if (this.#received < count && !this.#exited) {
      await Promise.race([new Promise<void>(resolve => { this.#waitFor = { count, resolve } }), this.#exit])
      this.#waitFor = undefined
    }
    return this.#last
  }

  async terminate (): Promise<void> {
    if (!this.#dead) this.#api[Comlink.releaseProxy]()
    this.#control.port1.close()
    if (!this.#exited) await this.#worker.terminate()
    await this.#exit
  }
}
