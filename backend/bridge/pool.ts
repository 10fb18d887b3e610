import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import { PicketError } from '../../shared/errors.js'
import type { Logger } from '../../shared/logger.js'
import { siblingModule } from '../../shared/paths.js'
import { workerScript } from '../../shared/worker-script.js'
import { DEFAULT_DETECTION_MEMORY } from '../detection/budget.js'
import type { FromWorker, ToWorker, WorkerInit, WorkerStats } from '../detection/protocol.js'
import type { ScanLimits } from '../detection/columns.js'
import type { InstanceFloor } from '../detection/seq.js'
import type { CaptionSpec } from '../detection/rules/captions.js'
import type { RuleTiming } from '../detection/rules/compile.js'
import type { RuleCollection } from '../detection/rules/types.js'
import type { Bridge, BridgeBatch, BridgeHealth, DetectionSink, SubmitResult, WorkerHealth, WorkerSnapshot } from './types.js'

// The in-process bridge: raw worker_threads, one MessagePort per worker, and
// our own routing, because every batch of a host must reach the worker that
// holds that host's actor (a task pool like piscina has no affinity). Batch
// bytes are transferred, not copied. A batch's submit resolves once the
// findings it caused are in the store: the ack follows the commit.
//
// A worker holds actors only for hosts that are active. The bridge keeps, per
// worker, the hosts it routed there and when; a host idle for hostIdleMs is
// forgotten (the worker drops its actor once its windows are empty), and the
// next message for a host the worker may not hold carries the host's dedup
// floors from the store, one per agent instance (aged and bounded there as in
// the worker, seq.ts). MessagePort order makes this race-free: whatever the
// bridge sends after 'forget' carries the floors.

export interface PoolOptions {
  workers: number
  rules: RuleCollection
  /** the captions the rules read (rules/captions.ts), found once on the main thread */
  captions?: CaptionSpec[]
  timing: RuleTiming
  limits: ScanLimits
  productVersion: string
  /** a host's dedup floors as persisted, one per agent instance (the store's seq_floors); none for a host never seen */
  floorsOf: (hostId: string) => InstanceFloor[]
  sink: DetectionSink
  logger: Logger
  tickMs?: number
  fleetRefreshMs?: number
  /** memory budget of each worker's correlation state, bytes (default 256 MiB) */
  memoryBytes?: number
  /** a host with no batch for this long is forgotten (default 10 min) */
  hostIdleMs?: number
  /** bytes queued to one worker before submit answers RETRY */
  maxQueuedBytes?: number
  startTimeoutMs?: number
  /** restart a worker that dies (default true) */
  restart?: boolean
  /** the detection worker module (default backend/detection/worker); tests pass a wrapper */
  workerScript?: URL
}

/** FNV-1a over the UTF-16 code units of the host id, mod `workers`. */
export function routeHost (hostId: string, workers: number): number {
  let h = 0x811c9dc5
  for (let i = 0; i < hostId.length; i++) h = Math.imul(h ^ hostId.charCodeAt(i), 0x01000193)
  return (h >>> 0) % workers
}

/**
 * A worker's V8 old generation: twice its state budget (the budget counts
 * estimated live bytes) plus room for the rules, one batch's columns and the
 * findings in flight. V8 sizes its collections by this limit, so a flood's
 * garbage is collected near the budget instead of near the machine's memory;
 * a worker that still outgrows it dies and is restarted like any other crash.
 */
export function workerHeapMb (memoryBytes: number): number {
  return Math.ceil(2 * memoryBytes / (1024 * 1024)) + 128
}

interface Pending { resolve: (r: SubmitResult) => void, bytes: number }

class Slot {
  readonly index: number
  worker: Worker | undefined
  port: MessagePort | undefined
  alive = false
  restarts = 0
  lastError: string | undefined
  readonly pending = new Map<number, Pending>()
  queuedBytes = 0
  lastBatchAt: number | undefined
  stats: WorkerStats | undefined
  readonly pings = new Map<number, (s: WorkerStats) => void>()
  readonly flushes = new Map<number, () => void>()
  /** hosts routed here whose actor the worker may hold, with the wall time of their last message */
  readonly known = new Map<string, number>()
  /** hosts forgotten for being idle (cumulative) */
  forgotten = 0
  onReady: (() => void) | undefined
  onFatal: ((msg: string) => void) | undefined
  exited: Promise<void> = Promise.resolve()
  constructor (index: number) { this.index = index }
}

export class WorkerPoolBridge implements Bridge {
  readonly kind = 'in-process worker pool'
  readonly #o: Required<PoolOptions>
  readonly #slots: Slot[]
  #nextId = 0
  #closing = false
  #sweeper: NodeJS.Timeout | undefined

  constructor (opts: PoolOptions) {
    this.#o = {
      tickMs: 250,
      fleetRefreshMs: 1000,
      memoryBytes: DEFAULT_DETECTION_MEMORY,
      hostIdleMs: 600_000,
      maxQueuedBytes: 256 * 1024 * 1024,
      startTimeoutMs: 20_000,
      restart: true,
      captions: [],
      ...opts,
      workerScript: opts.workerScript ?? siblingModule(import.meta.url, '../detection/worker'),
    }
    this.#slots = Array.from({ length: opts.workers }, (_, i) => new Slot(i))
  }

  route (hostId: string): number {
    return routeHost(hostId, this.#slots.length)
  }

  /** `hostId` has a message for `slot` now: its floors when the worker may hold no actor for it. */
  #introduce (slot: Slot, hostId: string, now: number): InstanceFloor[] | undefined {
    const known = slot.known.has(hostId)
    slot.known.set(hostId, now)
    return known ? undefined : this.#o.floorsOf(hostId)
  }

  /** Forget the hosts idle past hostIdleMs, and tell their workers. */
  #sweep (): void {
    const cutoff = Date.now() - this.#o.hostIdleMs
    for (const slot of this.#slots) {
      const idle: string[] = []
      for (const [h, at] of slot.known) if (at <= cutoff) idle.push(h)
      if (idle.length === 0) continue
      for (const h of idle) slot.known.delete(h)
      slot.forgotten += idle.length
      if (slot.alive && slot.port !== undefined) slot.port.postMessage({ t: 'forget', hosts: idle } satisfies ToWorker)
    }
  }

  async start (): Promise<void> {
    const results = await Promise.allSettled(this.#slots.map(async s => await this.#spawn(s)))
    const failed = results.map((r, i) => r.status === 'rejected' ? `worker ${i}: ${(r.reason as Error).message}` : undefined).filter(x => x !== undefined)
    if (failed.length > 0) {
      await this.close()
      throw new PicketError('PICKET_ERR_BRIDGE', `the detection workers did not start (${failed.join('; ')}); check the log above, the rules folder and --workers`)
    }
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(30_000, Math.max(250, this.#o.hostIdleMs / 4)))
    this.#sweeper.unref()
  }

  async #spawn (slot: Slot): Promise<void> {
    const { port1, port2 } = new MessageChannel()
    // a new worker holds no actor: every host's next message carries its floor
    slot.known.clear()
    const init: WorkerInit = {
      index: slot.index,
      docs: this.#o.rules.docs,
      files: this.#o.rules.files,
      captions: this.#o.captions,
      timing: this.#o.timing,
      limits: this.#o.limits,
      productVersion: this.#o.productVersion,
      memoryBytes: this.#o.memoryBytes,
      tickMs: this.#o.tickMs,
      fleetRefreshMs: this.#o.fleetRefreshMs,
      port: port2,
    }
    const { script, eval: isEval } = workerScript(this.#o.workerScript)
    const worker = new Worker(script, {
      eval: isEval,
      workerData: init,
      transferList: [port2],
      name: `picket-detection-${slot.index}`,
      // Node 24 lets a busy thread keep a 128 MiB young generation: RSS far over the budget
      resourceLimits: { maxOldGenerationSizeMb: workerHeapMb(this.#o.memoryBytes), maxYoungGenerationSizeMb: 48 },
    })
    slot.worker = worker
    slot.port = port1
    port1.on('message', (m: FromWorker) => this.#onMessage(slot, m))
    let resolveExit: () => void = () => {}
    slot.exited = new Promise(resolve => { resolveExit = resolve })
    worker.on('error', err => {
      slot.lastError = err.message
      this.#o.logger.error({ err, worker: slot.index }, 'detection worker failed')
    })
    worker.on('exit', code => {
      this.#onExit(slot, worker, code)
      resolveExit()
    })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ready message within ${this.#o.startTimeoutMs} ms`)), this.#o.startTimeoutMs)
      slot.onReady = () => { clearTimeout(timer); resolve() }
      slot.onFatal = (msg) => { clearTimeout(timer); reject(new Error(msg)) }
      worker.once('exit', code => { clearTimeout(timer); reject(new Error(slot.lastError ?? `exited with code ${code} before it was ready`)) })
    })
  }

  #onExit (slot: Slot, worker: Worker, code: number): void {
    if (slot.worker !== worker) return
    slot.alive = false
    // The worker's last messages (its final summary: the dedup floors) may
    // still be queued when 'exit' comes first, as it can on Node 24: take them
    // before the port is closed, or they are lost.
    const port = slot.port
    if (port !== undefined) {
      for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) this.#onMessage(slot, m.message as FromWorker)
      port.close()
    }
    const why = slot.lastError ?? `exit code ${code}`
    for (const p of slot.pending.values()) p.resolve({ status: 'retry', message: `detection worker ${slot.index} stopped (${why}) before accepting the batch; resend it` })
    slot.pending.clear()
    slot.queuedBytes = 0
    for (const f of slot.flushes.values()) f()
    slot.flushes.clear()
    if (this.#closing || !this.#o.restart) return
    slot.restarts++
    const delay = Math.min(30_000, 250 * 2 ** Math.min(slot.restarts, 7))
    this.#o.logger.error({ worker: slot.index, code, restarts: slot.restarts, delayMs: delay, lastError: slot.lastError }, 'detection worker exited; restarting it (its hosts\' sliding windows restart empty)')
    setTimeout(() => {
      if (this.#closing) return
      this.#spawn(slot).catch(err => { slot.lastError = (err as Error).message })
    }, delay).unref()
  }

  #onMessage (slot: Slot, m: FromWorker): void {
    switch (m.t) {
      case 'ready':
        slot.alive = true
        slot.lastError = undefined
        slot.onReady?.()
        break
      case 'done': {
        const stored: Array<Promise<void>> = []
        if (m.findings !== undefined) stored.push(this.#o.sink.findings(m.findings))
        if (m.fleet !== undefined) stored.push(this.#o.sink.fleet(m.fleet))
        // a resend of a batch whose findings are still on their way to the store: the agent forgets a
        // batch answered DUPLICATE, so that answer waits for them too
        if (m.outcome.status === 'duplicate') stored.push(this.#o.sink.settled())
        const p = slot.pending.get(m.id)
        if (p === undefined) break
        slot.pending.delete(m.id)
        slot.queuedBytes -= p.bytes
        if (stored.length === 0) p.resolve(m.outcome)
        else void Promise.all(stored).then(() => p.resolve(m.outcome))
        break
      }
      case 'emit':
        if (m.findings.length > 0) void this.#o.sink.findings(m.findings)
        if (m.fleet.length > 0) void this.#o.sink.fleet(m.fleet)
        break
      case 'pong':
        slot.stats = m.stats
        slot.pings.get(m.id)?.(m.stats)
        slot.pings.delete(m.id)
        break
      case 'flushed':
        slot.flushes.get(m.id)?.()
        slot.flushes.delete(m.id)
        break
      case 'summary':
        slot.stats = m.stats
        this.#o.sink.stats(slot.index, m.stats)
        if (m.hosts.length > 0) this.#o.sink.hosts(m.hosts, slot.index)
        break
      case 'fatal':
        slot.lastError = m.message
        slot.onFatal?.(m.message)
        break
    }
  }

  async submit (b: BridgeBatch): Promise<SubmitResult> {
    const slot = this.#slots[this.route(b.hostId)]
    if (!slot.alive || slot.port === undefined) {
      return { status: 'retry', message: `detection worker ${slot.index} is not running${slot.lastError !== undefined ? ` (${slot.lastError})` : ''}; the batch was not accepted, resend it` }
    }
    if (slot.queuedBytes > this.#o.maxQueuedBytes) {
      return { status: 'retry', message: `detection worker ${slot.index} has ${slot.queuedBytes} bytes queued, over its bound; resend the batch later` }
    }
    const r = b.records
    const x = b.context
    const bytes = r.byteLength + x.byteLength
    let buf: ArrayBuffer
    let off: number
    let ctxOff: number
    // one buffer crosses to the worker: gRPC's own when records and context
    // both lie in it (they do, as slices of one message), else a copy of both
    if (b.owned && r.buffer instanceof ArrayBuffer && (x.byteLength === 0 || x.buffer === r.buffer)) {
      buf = r.buffer
      off = r.byteOffset
      ctxOff = x.byteLength === 0 ? 0 : x.byteOffset
    } else {
      const copy = new Uint8Array(bytes)
      copy.set(r)
      copy.set(x, r.byteLength)
      buf = copy.buffer
      off = 0
      ctxOff = r.byteLength
    }
    const id = ++this.#nextId
    const floors = this.#introduce(slot, b.hostId, b.recvAt)
    const msg: ToWorker = { t: 'batch', id, hostId: b.hostId, hostname: b.hostname, instance: b.instance, seq: b.seq, count: b.count, buf, off, len: r.byteLength, ctxOff, ctxLen: x.byteLength, recvAt: b.recvAt, ...(floors !== undefined ? { floors } : {}) }
    slot.lastBatchAt = b.recvAt
    return await new Promise<SubmitResult>(resolve => {
      slot.pending.set(id, { resolve, bytes })
      slot.queuedBytes += bytes
      ;(slot.port as MessagePort).postMessage(msg, [buf])
    })
  }

  skip (hostId: string, instance: string, seq: number): void {
    const slot = this.#slots[this.route(hostId)]
    if (!slot.alive || slot.port === undefined) return
    const floors = this.#introduce(slot, hostId, Date.now())
    slot.port.postMessage({ t: 'skip', hostId, instance, seq, ...(floors !== undefined ? { floors } : {}) } satisfies ToWorker)
  }

  async health (timeoutMs = 1000): Promise<BridgeHealth> {
    const workers = await Promise.all(this.#slots.map(async (slot): Promise<WorkerHealth> => {
      let rttMs: number | undefined
      if (slot.alive && slot.port !== undefined) {
        const id = ++this.#nextId
        const t0 = performance.now()
        const got = await new Promise<boolean>(resolve => {
          const timer = setTimeout(() => { slot.pings.delete(id); resolve(false) }, timeoutMs)
          slot.pings.set(id, () => { clearTimeout(timer); resolve(true) })
          ;(slot.port as MessagePort).postMessage({ t: 'ping', id } satisfies ToWorker)
        })
        if (got) rttMs = Math.round((performance.now() - t0) * 100) / 100
      }
      return {
        index: slot.index,
        alive: slot.alive && rttMs !== undefined,
        threadId: slot.worker?.threadId,
        queued: slot.pending.size,
        queuedBytes: slot.queuedBytes,
        restarts: slot.restarts,
        lastError: slot.lastError ?? (slot.alive && rttMs === undefined ? `no answer to a ping within ${timeoutMs} ms (busy or stuck; queued ${slot.pending.size} batches)` : undefined),
        rttMs,
        lastBatchAt: slot.lastBatchAt,
        hosts: slot.known.size,
        hostsForgotten: slot.forgotten,
        stats: slot.stats,
      }
    }))
    const up = workers.filter(w => w.alive).length
    const ok = up === workers.length
    return {
      kind: this.kind,
      reachable: up > 0,
      ok,
      detail: ok ? `${up} of ${workers.length} detection workers alive` : `${workers.length - up} of ${workers.length} detection workers not answering: batches for their hosts are answered RETRY and stay in the agents' spools`,
      workers,
    }
  }

  async flush (): Promise<void> {
    await Promise.all(this.#slots.map(async slot => {
      if (!slot.alive || slot.port === undefined) return
      const id = ++this.#nextId
      await new Promise<void>(resolve => {
        const timer = setTimeout(() => { slot.flushes.delete(id); resolve() }, 5000)
        slot.flushes.set(id, () => { clearTimeout(timer); resolve() })
        ;(slot.port as MessagePort).postMessage({ t: 'flush', id } satisfies ToWorker)
      })
    }))
  }

  queueDepths (): number[] {
    return this.#slots.map(s => s.pending.size)
  }

  snapshot (): WorkerSnapshot[] {
    return this.#slots.map(s => ({ index: s.index, alive: s.alive, restarts: s.restarts, queued: s.pending.size, hosts: s.known.size, hostsForgotten: s.forgotten }))
  }

  async close (): Promise<void> {
    this.#closing = true
    clearInterval(this.#sweeper)
    await Promise.all(this.#slots.map(async slot => {
      const w = slot.worker
      if (w === undefined) return
      if (slot.alive && slot.port !== undefined) {
        try { slot.port.postMessage({ t: 'stop' } satisfies ToWorker) } catch {}
        const timer = setTimeout(() => { void w.terminate() }, 3000)
        await slot.exited
        clearTimeout(timer)
      } else {
        await w.terminate()
      }
    }))
  }
}
