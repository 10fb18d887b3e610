import * as grpc from '@grpc/grpc-js'
import { unpackRecords, unpackValue } from '../../shared/codec.js'
import { expandBatch, type LeanContext } from '../../shared/ocsf/lean.js'
import { collectorService, type Ack, type AckStatus, type Batch } from '../../shared/proto/index.js'

// A real gRPC Ship server for tests: it records the batches it receives and
// answers each the way it is told to. Like the real collector it
// de-duplicates by (host_id, instance, seq), answers DUPLICATE to a resend,
// and echoes the batch's instance in its ack.
//
//   mode 'ack'    ack every batch OK
//   mode 'stall'  accept batches, never ack
//   mode 'refuse' REFUSED (with a limit) for batches `refuse(batch)` picks, OK for the rest
//   mode 'retry'  RETRY for batches `retry(batch)` picks (each seq once), OK for the rest

export type CollectorMode = 'ack' | 'stall' | 'refuse' | 'retry'

export interface ReceivedBatch {
  host_id: string
  seq: number
  count: number
  records: Buffer
  /** the lean batch's context; empty: full-form records */
  context: Buffer
  drops: Batch['drops']
  hostname?: string
  sent_at_ms?: number
  agent_version?: string
  captured_total?: number
  instance: string
  receivedAt: number
}

export interface TestCollectorOptions {
  port?: number
  mode?: CollectorMode
  refuse?: (b: ReceivedBatch) => boolean
  retry?: (b: ReceivedBatch) => boolean
  maxReceiveBytes?: number
  /** serve TLS: PEM contents; with clientCa, require a client certificate it signed (mTLS) */
  tls?: { cert: Buffer, key: Buffer, clientCa?: Buffer }
}

export class TestCollector {
  mode: CollectorMode
  refuse: (b: ReceivedBatch) => boolean
  retry: (b: ReceivedBatch) => boolean
  /** accepted batches, first delivery of each (host, instance, seq), in arrival order */
  readonly accepted: ReceivedBatch[] = []
  /** every batch that arrived, resends included */
  readonly arrivals: ReceivedBatch[] = []
  readonly refused: ReceivedBatch[] = []
  duplicates = 0
  streams = 0
  readonly #seen = new Set<string>()
  readonly #retried = new Set<string>()
  readonly #calls = new Set<grpc.ServerDuplexStream<Batch, Ack>>()
  readonly #stalled: Array<{ call: grpc.ServerDuplexStream<Batch, Ack>, ack: Ack }> = []
  #server: grpc.Server | undefined
  #port = 0
  #waiters: Array<() => void> = []
  readonly #opts: TestCollectorOptions

  private constructor (opts: TestCollectorOptions) {
    this.#opts = opts
    this.mode = opts.mode ?? 'ack'
    this.refuse = opts.refuse ?? (() => true)
    this.retry = opts.retry ?? (() => true)
  }

  static async start (opts: TestCollectorOptions = {}): Promise<TestCollector> {
    const c = new TestCollector(opts)
    await c.listen(opts.port ?? 0)
    return c
  }

  get port (): number {
    return this.#port
  }

  get address (): string {
    return `127.0.0.1:${this.#port}`
  }

  /** (Re)start listening, on the same port as before unless told otherwise. */
  async listen (port = this.#port): Promise<void> {
    const server = new grpc.Server({ 'grpc.max_receive_message_length': this.#opts.maxReceiveBytes ?? 64 * 1024 * 1024 })
    server.addService(collectorService(), { Ship: (call: grpc.ServerDuplexStream<Batch, Ack>) => { this.#onCall(call) } })
    this.#port = await new Promise<number>((resolve, reject) => {
      const tls = this.#opts.tls
      const creds = tls === undefined
        ? grpc.ServerCredentials.createInsecure()
        : grpc.ServerCredentials.createSsl(tls.clientCa ?? null, [{ cert_chain: tls.cert, private_key: tls.key }], tls.clientCa !== undefined)
      server.bindAsync(`127.0.0.1:${port}`, creds, (err, p) => { if (err !== null) reject(err); else resolve(p) })
    })
    this.#server = server
  }

  #onCall (call: grpc.ServerDuplexStream<Batch, Ack>): void {
    this.streams++
    this.#calls.add(call)
    call.on('data', (b: Batch) => { this.#onBatch(call, b) })
    call.on('end', () => { call.end() })
    call.on('error', () => {})
    call.on('close', () => { this.#calls.delete(call) })
  }

  #onBatch (call: grpc.ServerDuplexStream<Batch, Ack>, b: Batch): void {
    const rb: ReceivedBatch = {
      host_id: b.host_id,
      seq: Number(b.seq),
      count: b.count,
      records: b.records,
      context: b.context ?? Buffer.alloc(0),
      drops: b.drops,
      hostname: b.hostname,
      sent_at_ms: Number(b.sent_at_ms),
      agent_version: b.agent_version,
      captured_total: Number(b.captured_total),
      instance: b.instance ?? '',
      receivedAt: Date.now(),
    }
    this.arrivals.push(rb)
    const key = `${rb.host_id}\0${rb.instance}\0${rb.seq}`
    let status: AckStatus = 'OK'
    const ack: Ack = { host_id: rb.host_id, seq: rb.seq, status, instance: rb.instance }
    if (this.#seen.has(key)) {
      status = 'DUPLICATE'
      this.duplicates++
    } else if (this.mode === 'refuse' && this.refuse(rb)) {
      status = 'REFUSED'
      ack.code = grpc.status.RESOURCE_EXHAUSTED
      ack.error = 'PICKET_ERR_LIMIT'
      ack.message = 'batch over max_batch_records (test)'
      ack.limit = 'max_batch_records'
      this.refused.push(rb)
      this.#seen.add(key)
    } else if (this.mode === 'retry' && this.retry(rb) && !this.#retried.has(key)) {
      status = 'RETRY'
      this.#retried.add(key)
    } else {
      this.#seen.add(key)
      this.accepted.push(rb)
    }
    ack.status = status
    if (this.mode === 'stall') {
      this.#stalled.push({ call, ack })
    } else {
      call.write(ack)
    }
    this.#wake()
  }

  /** Leave stall mode and send the acks held back. */
  unstall (): void {
    this.mode = 'ack'
    for (const { call, ack } of this.#stalled.splice(0)) {
      if (this.#calls.has(call)) call.write(ack)
    }
  }

  #wake (): void {
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }

  /** Wait until `pred` holds (checked on every batch), or fail after timeoutMs. */
  async waitFor (pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const end = Date.now() + timeoutMs
    while (!pred()) {
      const left = end - Date.now()
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (accepted ${this.accepted.length} batches, ${this.acceptedRecords} records)`)
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, Math.min(left, 50))
        this.#waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  get acceptedRecords (): number {
    let n = 0
    for (const b of this.accepted) n += b.count
    return n
  }

  /** The OCSF records of the accepted batches, in seq order, expanded from the lean form (shared/ocsf/lean.ts) where they came in it. */
  records (): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = []
    for (const b of [...this.accepted].sort((x, y) => x.seq - y.seq)) {
      const ctx = (b.context !== undefined && b.context.byteLength > 0 ? unpackValue(b.context) : {}) as LeanContext
      out.push(...expandBatch(ctx, unpackRecords(b.records)))
    }
    return out
  }

  /** Stop serving at once: streams break, the port closes (an outage). */
  async kill (): Promise<void> {
    const s = this.#server
    this.#server = undefined
    if (s === undefined) return
    s.forceShutdown()
    this.#calls.clear()
    this.#stalled.length = 0
  }

  async close (): Promise<void> {
    await this.kill()
  }
}
