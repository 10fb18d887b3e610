import * as grpc from '@grpc/grpc-js'
import { readFileSync } from 'node:fs'
import { collectorClientCtor, type Ack, type Batch, type DropCounters } from '../../shared/proto/index.js'

// The injector's side of the Ship stream, behaving as an agent does: one
// stream per host, seq from 1 up by one per batch, a bounded window of
// batches in flight, acks matched by seq. OK and DUPLICATE release a batch;
// REFUSED releases it for good (and is counted by limit); RETRY sends the
// same batch again after a backoff. A broken stream is reopened and every
// unacked batch is resent in order.

function asBuffer (b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)
}

export interface ClientOptions {
  /** PEM files for a TLS collector; with cert and key the client does mTLS */
  tls?: { ca?: string, cert?: string, key?: string, serverName?: string }
}

export function connectCollector (address: string, opts: ClientOptions = {}): grpc.Client {
  const Ctor = collectorClientCtor()
  const t = opts.tls
  const creds = t === undefined
    ? grpc.credentials.createInsecure()
    : grpc.credentials.createSsl(
      t.ca !== undefined ? readFileSync(t.ca) : null,
      t.key !== undefined ? readFileSync(t.key) : null,
      t.cert !== undefined ? readFileSync(t.cert) : null)
  const options: grpc.ChannelOptions = {
    'grpc.max_send_message_length': 256 * 1024 * 1024,
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    ...(t?.serverName !== undefined ? { 'grpc.ssl_target_name_override': t.serverName } : {}),
  }
  return new Ctor(address, creds, options)
}

export interface StreamOptions {
  hostname?: string
  agentVersion?: string
  /** batches in flight before send() waits (default 32) */
  window?: number
  startSeq?: number
  /** resends of a RETRY batch or reconnects before giving up (default 8) */
  maxRetries?: number
  drops?: Partial<DropCounters>
}

export interface StreamStats {
  sent: number
  ok: number
  duplicate: number
  refused: number
  retried: number
  reconnects: number
  refusedByLimit: Record<string, number>
  /** the first refusal's message, to show a person */
  firstRefusal: string | undefined
}

interface Pending {
  batch: Batch
  resolve: (a: Ack) => void
  reject: (e: Error) => void
  tries: number
}

type ShipCall = grpc.ClientDuplexStream<Batch, Ack>

export class AgentStream {
  readonly hostId: string
  readonly stats: StreamStats = { sent: 0, ok: 0, duplicate: 0, refused: 0, retried: 0, reconnects: 0, refusedByLimit: {}, firstRefusal: undefined }
  readonly #client: grpc.Client
  readonly #o: Required<Omit<StreamOptions, 'drops'>> & { drops: Partial<DropCounters> | undefined }
  readonly #pending = new Map<number, Pending>()
  readonly #waiters: Array<() => void> = []
  #call: ShipCall | undefined
  #seq: number
  #captured = 0
  #ending = false
  #failed: Error | undefined

  constructor (client: grpc.Client, hostId: string, opts: StreamOptions = {}) {
    this.#client = client
    this.hostId = hostId
    this.#o = { hostname: hostId, agentVersion: 'inject-scan', window: 32, startSeq: 1, maxRetries: 8, ...opts, drops: opts.drops }
    this.#seq = this.#o.startSeq - 1
  }

  #open (): ShipCall {
    const call = (this.#client as unknown as { Ship: () => ShipCall }).Ship()
    call.on('data', (ack: Ack) => this.#onAck(ack))
    call.on('error', (err: grpc.ServiceError) => this.#onBroken(call, err))
    call.on('end', () => this.#onBroken(call, undefined))
    this.#call = call
    return call
  }

  #onAck (ack: Ack): void {
    const p = this.#pending.get(ack.seq)
    if (p === undefined) return
    if (ack.status === 'RETRY') {
      if (p.tries >= this.#o.maxRetries) { this.#settle(ack.seq, ack); return }
      p.tries++
      this.stats.retried++
      setTimeout(() => { if (this.#pending.has(ack.seq)) this.#call?.write(p.batch) }, Math.min(2000, 50 * 2 ** p.tries))
      return
    }
    if (ack.status === 'OK') this.stats.ok++
    else if (ack.status === 'DUPLICATE') this.stats.duplicate++
    else if (ack.status === 'REFUSED') {
      this.stats.refused++
      const k = ack.limit !== undefined && ack.limit !== '' ? ack.limit : (ack.error ?? 'unknown')
      this.stats.refusedByLimit[k] = (this.stats.refusedByLimit[k] ?? 0) + 1
      this.stats.firstRefusal ??= `${ack.error ?? ''} ${ack.message ?? ''}`.trim()
    }
    this.#settle(ack.seq, ack)
  }

  #settle (seq: number, ack: Ack): void {
    const p = this.#pending.get(seq)
    if (p === undefined) return
    this.#pending.delete(seq)
    p.resolve(ack)
    this.#waiters.shift()?.()
  }

  #onBroken (call: ShipCall, err: grpc.ServiceError | undefined): void {
    if (call !== this.#call) return
    this.#call = undefined
    if (this.#pending.size === 0 && this.#ending) return
    if (this.#pending.size === 0 && err === undefined) return
    this.stats.reconnects++
    if (this.stats.reconnects > this.#o.maxRetries) {
      this.#fail(new Error(`the Ship stream of ${this.hostId} broke ${this.stats.reconnects} times${err !== undefined ? ` (last: ${err.message})` : ''}; giving up`))
      return
    }
    setTimeout(() => {
      if (this.#failed !== undefined) return
      let c: ShipCall
      try {
        c = this.#open()
      } catch (e) {
        this.#fail(e as Error)
        return
      }
      for (const seq of [...this.#pending.keys()].sort((a, b) => a - b)) c.write((this.#pending.get(seq) as Pending).batch)
      if (this.#ending && this.#pending.size === 0) c.end()
    }, Math.min(2000, 100 * 2 ** this.stats.reconnects)).unref()
  }

  #fail (err: Error): void {
    this.#failed = err
    for (const p of this.#pending.values()) p.reject(err)
    this.#pending.clear()
    for (const w of this.#waiters.splice(0)) w()
  }

  /** Send one batch (a packed msgpack array of `count` records, and the lean form's context); resolves with its final ack. */
  async send (records: Uint8Array, count: number, capturedDelta = count, context?: Uint8Array): Promise<Ack> {
    if (this.#failed !== undefined) throw this.#failed
    while (this.#pending.size >= this.#o.window) {
      await new Promise<void>(resolve => this.#waiters.push(resolve))
      if (this.#failed !== undefined) throw this.#failed
    }
    const call = this.#call ?? this.#open()
    const seq = ++this.#seq
    this.#captured += capturedDelta
    const batch: Batch = {
      host_id: this.hostId,
      seq,
      count,
      records: asBuffer(records),
      ...(context !== undefined && context.byteLength > 0 ? { context: asBuffer(context) } : {}),
      hostname: this.#o.hostname,
      sent_at_ms: Date.now(),
      agent_version: this.#o.agentVersion,
      captured_total: this.#captured,
      ...(this.#o.drops !== undefined ? { drops: this.#o.drops } : {}),
    }
    this.stats.sent++
    return await new Promise<Ack>((resolve, reject) => {
      this.#pending.set(seq, { batch, resolve, reject, tries: 0 })
      call.write(batch)
    })
  }

  /** Send a raw Batch as is (tests of the collector's checks). */
  async sendRaw (batch: Batch): Promise<Ack> {
    const call = this.#call ?? this.#open()
    this.stats.sent++
    return await new Promise<Ack>((resolve, reject) => {
      this.#pending.set(batch.seq, { batch, resolve, reject, tries: this.#o.maxRetries })
      call.write(batch)
    })
  }

  /** Stop: fail what is in flight, reconnect no more, cancel the stream. */
  abort (reason = 'aborted'): void {
    if (this.#failed === undefined) this.#fail(new Error(reason))
    this.#call?.cancel()
    this.#call = undefined
  }

  get inFlight (): number { return this.#pending.size }
  get lastSeq (): number { return this.#seq }

  /** Wait for every ack, then half-close the stream. */
  async end (): Promise<void> {
    this.#ending = true
    while (this.#pending.size > 0 && this.#failed === undefined) await new Promise<void>(resolve => this.#waiters.push(resolve))
    const call = this.#call
    if (call !== undefined) {
      await new Promise<void>(resolve => {
        call.once('status', () => resolve())
        call.once('error', () => resolve())
        call.end()
      })
    }
    if (this.#failed !== undefined) throw this.#failed
  }
}
