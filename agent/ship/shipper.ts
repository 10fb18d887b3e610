import * as grpc from '@grpc/grpc-js'
import type { Logger } from '../../shared/logger.js'
import { collectorService, type Ack, type DropCounters } from '../../shared/proto/index.js'
import { Backoff } from './backoff.js'
import { encodeBatch, type BatchStrings } from './encode.js'
import { InFlight } from './inflight.js'
import type { Eviction, Spool } from './spool.js'

// The shipper sends spooled batches, in seq order, on one Ship stream, with
// at most `window` batches (and `windowBytes`) waiting for an ack. Acks free
// the window and mark batches done in the spool. A broken stream, an ack
// that does not come within ackTimeoutMs, or a RETRY ack rewinds the send
// cursor to the oldest batch not yet acked; the collector de-duplicates by
// (host_id, instance, seq), so a resend is never counted twice. An ack that
// matches no batch in flight (inflight.ts) is a protocol error: counted,
// logged, and the stream is reconnected with the spool untouched.

export interface ShipperOptions {
  /** HOST:PORT */
  target: string
  credentials?: grpc.ChannelCredentials
  /** TLS: the name to expect in the collector's certificate */
  serverName?: string
  hostId: string
  hostname: string
  agentVersion: string
  spool: Spool
  window: number
  windowBytes: number
  backoff: { initialMs: number, maxMs: number }
  ackTimeoutMs: number
  /** the agent's drop counters, sent with every batch */
  drops: () => DropCounters
  /** records captured since the agent started, sent with every batch */
  capturedTotal: () => number
  log: Logger
  /**
   * Records that will never reach the collector: refused for good, or gone
   * from the spool (evicted past its bound, unreadable) before an ack.
   */
  onDropped?: (cause: 'refused' | 'spool_eviction', records: number) => void
  onAck?: (ack: Ack, latencyMs: number | undefined) => void
}

export interface ShipperStats {
  connected: boolean
  inflight: number
  inflightBytes: number
  /** spooled batches not yet sent on the current stream */
  unsent: number
  sentBatches: number
  ackedBatches: number
  ackedRecords: number
  duplicates: number
  refusedBatches: number
  refusedRecords: number
  retryAcks: number
  /** records evicted from the spool while in flight: delivered if their ack comes, dropped otherwise */
  evictedInFlightRecords: number
  reconnects: number
  streamErrors: number
  /** acks that matched no batch in flight (another host or instance, a seq not sent or acked already) */
  protocolErrors: number
  lastAckAt: number
}

/** Batches go out already encoded (encode.ts); acks are decoded by the .proto's codec. */
type ShipCall = grpc.ClientDuplexStream<Buffer, Ack>
type CollectorClient = grpc.Client & { Ship: (md?: grpc.Metadata, opts?: grpc.CallOptions) => ShipCall }

export class Shipper {
  readonly #o: ShipperOptions
  readonly #client: CollectorClient
  readonly #backoff: Backoff
  readonly #retryBackoff: Backoff
  readonly #strings: BatchStrings
  readonly #instance: string
  #call: ShipCall | undefined
  #gen = 0
  #up = false
  #connecting = false
  #stopped = false
  #writeBlocked = false
  #cursor = 1
  #pausedUntil = 0
  #timer: NodeJS.Timeout | undefined
  #pumpTimer: NodeJS.Timeout | undefined
  readonly #watchdog: NodeJS.Timeout
  readonly #inflight = new InFlight()
  /**
   * Batches evicted from the spool while in flight: an ack still delivers
   * them; anything else (a broken stream, RETRY) loses them, since they
   * cannot be sent again. Seq → record count.
   */
  readonly #evictedInFlight = new Map<number, number>()
  #waiters: Array<() => void> = []
  readonly #s: ShipperStats = {
    connected: false, inflight: 0, inflightBytes: 0, unsent: 0, sentBatches: 0, ackedBatches: 0, ackedRecords: 0,
    duplicates: 0, refusedBatches: 0, refusedRecords: 0, retryAcks: 0, evictedInFlightRecords: 0, reconnects: 0, streamErrors: 0, protocolErrors: 0, lastAckAt: 0,
  }

  constructor (opts: ShipperOptions) {
    this.#o = opts
    this.#backoff = new Backoff(opts.backoff)
    this.#retryBackoff = new Backoff(opts.backoff)
    const svc = collectorService()
    const Ctor = grpc.makeGenericClientConstructor({ Ship: { ...svc.Ship, requestSerialize: (b: Buffer) => b } }, 'Collector')
    this.#instance = opts.spool.instance
    this.#strings = { hostId: Buffer.from(opts.hostId), hostname: Buffer.from(opts.hostname), version: Buffer.from(opts.agentVersion), instance: Buffer.from(this.#instance) }
    this.#client = new Ctor(opts.target, opts.credentials ?? grpc.credentials.createInsecure(), {
      'grpc.keepalive_time_ms': 20_000,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.initial_reconnect_backoff_ms': opts.backoff.initialMs,
      'grpc.max_reconnect_backoff_ms': opts.backoff.maxMs,
      'grpc.max_send_message_length': -1,
      'grpc.enable_retries': 0,
      ...(opts.serverName !== undefined ? { 'grpc.ssl_target_name_override': opts.serverName, 'grpc.default_authority': opts.serverName } : {}),
    }) as unknown as CollectorClient
    opts.spool.onEvict = e => { this.#onEvict(e) }
    this.#watchdog = setInterval(() => { this.#checkAckTimeout() }, Math.min(1000, opts.ackTimeoutMs))
    this.#watchdog.unref()
  }

  start (): void {
    this.#connect()
  }

  /** A batch was appended to the spool: send it if the window allows. */
  notify (): void {
    this.#pump()
  }

  // -- connection ---------------------------------------------------------

  #connect (): void {
    if (this.#stopped || this.#up || this.#connecting) return
    this.#connecting = true
    // the channel retries the connection on its own backoff; this only bounds how long we wait for it
    const deadline = Date.now() + Math.max(1000, Math.min(5000, this.#o.backoff.maxMs))
    this.#client.waitForReady(deadline, err => {
      this.#connecting = false
      if (this.#stopped) return
      if (err != null) {
        this.#scheduleReconnect(`collector ${this.#o.target} not reachable: ${err.message}`)
        return
      }
      this.#openStream()
    })
  }

  #scheduleReconnect (why: string): void {
    if (this.#stopped || this.#timer !== undefined) return
    const delay = this.#backoff.next()
    this.#o.log.warn({ collector: this.#o.target, retryInMs: Math.round(delay), attempt: this.#backoff.attempt, pendingBatches: this.#o.spool.pendingBatches }, why)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      this.#s.reconnects++
      this.#connect()
    }, delay)
  }

  #openStream (): void {
    const gen = ++this.#gen
    const md = new grpc.Metadata()
    md.set('x-picket-host-id', this.#o.hostId)
    const call = this.#client.Ship(md)
    this.#call = call
    call.on('data', (ack: Ack) => { if (gen === this.#gen) this.#onAck(ack) })
    call.on('error', (err: grpc.ServiceError) => { if (gen === this.#gen) this.#down(`Ship stream failed: ${err.message}`) })
    call.on('end', () => { if (gen === this.#gen) this.#down('collector closed the Ship stream') })
    call.on('drain', () => {
      if (gen !== this.#gen) return
      this.#writeBlocked = false
      this.#pump()
    })
    this.#up = true
    this.#s.connected = true
    this.#writeBlocked = false
    this.#inflight.clear()
    this.#cursor = this.#o.spool.firstPending()
    this.#o.log.info({ collector: this.#o.target, instance: this.#instance, fromSeq: this.#cursor, pendingBatches: this.#o.spool.pendingBatches }, 'Ship stream open')
    this.#pump()
  }

  #down (why: string): void {
    if (!this.#up) return
    this.#gen++
    this.#up = false
    this.#s.connected = false
    this.#s.streamErrors++
    const call = this.#call
    this.#call = undefined
    if (call !== undefined) {
      call.on('error', () => {})
      call.cancel()
    }
    this.#inflight.clear()
    this.#loseEvictedInFlight()
    this.#wake()
    this.#scheduleReconnect(why)
  }

  #checkAckTimeout (): void {
    const oldest = this.#inflight.oldest()
    if (!this.#up || oldest === undefined) return
    if (performance.now() - oldest.sentAt > this.#o.ackTimeoutMs) {
      this.#down(`no ack within ${this.#o.ackTimeoutMs} ms for ${this.#inflight.size} batches in flight; reconnecting`)
    }
  }

  // -- sending ------------------------------------------------------------

  #pump (): void {
    if (!this.#up || this.#writeBlocked || this.#call === undefined) return
    const now = Date.now()
    if (now < this.#pausedUntil) {
      if (this.#pumpTimer === undefined) {
        this.#pumpTimer = setTimeout(() => { this.#pumpTimer = undefined; this.#pump() }, this.#pausedUntil - now)
      }
      return
    }
    const spool = this.#o.spool
    while (this.#inflight.size < this.#o.window && this.#inflight.bytes < this.#o.windowBytes) {
      const seq = spool.nextPending(this.#cursor)
      if (seq >= spool.nextSeq) break
      this.#cursor = seq + 1
      if (this.#inflight.has(seq)) continue
      const b = spool.read(seq)
      if (b === undefined) {
        const count = spool.countOf(seq)
        if (spool.ack(seq)) this.#o.onDropped?.('spool_eviction', count)
        continue
      }
      // encoded now, into memory the in-flight table lends until the ack: the
      // spool's copy of the records may be reused once this returns
      let encoded: Buffer | undefined
      const msg = encodeBatch({
        host_id: this.#o.hostId,
        seq,
        count: b.count,
        records: b.records as Buffer,
        ...(b.context !== undefined ? { context: b.context as Buffer } : {}),
        drops: this.#o.drops(),
        hostname: this.#o.hostname,
        sent_at_ms: b.createdMs,
        agent_version: this.#o.agentVersion,
        captured_total: this.#o.capturedTotal(),
      }, this.#strings, size => { encoded = this.#inflight.encodeBuffer(size); return encoded })
      this.#inflight.add(seq, { sentAt: performance.now(), count: b.count, bytes: b.records.byteLength + (b.context?.byteLength ?? 0), encoded })
      this.#s.sentBatches++
      if (!this.#call.write(msg)) {
        this.#writeBlocked = true
        break
      }
    }
  }

  #onAck (ack: Ack): void {
    const problem = this.#inflight.mismatch(ack, this.#o.hostId, this.#instance)
    if (problem !== undefined) {
      this.#s.protocolErrors++
      this.#o.log.error({ collector: this.#o.target, seq: ack.seq, status: ack.status, ackHostId: ack.host_id, ackInstance: ack.instance, instance: this.#instance }, `the collector sent an ack that matches no batch in flight: ${problem}; reconnecting, and every unacked batch stays in the spool`)
      this.#down('protocol error on the Ship stream (see the error above)')
      return
    }
    const seq = Number(ack.seq)
    const e = this.#inflight.take(seq)
    const latency = e === undefined ? undefined : performance.now() - e.sentAt
    const spool = this.#o.spool
    const evictedCount = this.#evictedInFlight.get(seq)
    this.#evictedInFlight.delete(seq)
    // the spool no longer knows an evicted batch: it is settled here
    const settle = (): boolean => evictedCount !== undefined || spool.ack(seq)
    const count = evictedCount ?? e?.count ?? spool.countOf(seq)
    this.#s.lastAckAt = Date.now()
    switch (ack.status) {
      case 'OK':
      case 'DUPLICATE':
        if (settle()) {
          this.#s.ackedBatches++
          this.#s.ackedRecords += count
          if (ack.status === 'DUPLICATE') this.#s.duplicates++
        }
        this.#backoff.reset()
        this.#retryBackoff.reset()
        break
      case 'REFUSED':
        if (settle()) {
          this.#s.refusedBatches++
          this.#s.refusedRecords += count
          this.#o.log.error({ seq, count, code: ack.code, error: ack.error, limit: ack.limit }, `collector refused a batch for good: ${ack.message ?? ''}`)
          this.#o.onDropped?.('refused', count)
        }
        break
      default: {
        // RETRY (or a status this agent does not know): resend from here after a pause
        if (ack.status !== 'RETRY') this.#o.log.warn({ seq, status: ack.status }, 'ack with an unknown status; treating it as RETRY')
        this.#s.retryAcks++
        if (evictedCount !== undefined) {
          this.#o.onDropped?.('spool_eviction', evictedCount)
          break
        }
        const delay = this.#retryBackoff.next()
        this.#pausedUntil = Math.max(this.#pausedUntil, Date.now() + delay)
        this.#cursor = Math.min(this.#cursor, seq)
        this.#o.log.warn({ seq, retryInMs: Math.round(delay), message: ack.message }, 'collector asked to resend a batch later')
      }
    }
    this.#o.onAck?.(ack, latency)
    this.#pump()
    this.#wake()
  }

  #onEvict (e: Eviction): void {
    let lost = 0
    for (let i = 0; i < e.seqs.length; i++) {
      if (this.#inflight.has(e.seqs[i])) this.#evictedInFlight.set(e.seqs[i], e.counts[i])
      else lost += e.counts[i]
    }
    if (lost > 0) this.#o.onDropped?.('spool_eviction', lost)
  }

  #loseEvictedInFlight (): void {
    let lost = 0
    for (const n of this.#evictedInFlight.values()) lost += n
    this.#evictedInFlight.clear()
    if (lost > 0) this.#o.onDropped?.('spool_eviction', lost)
  }

  #wake (): void {
    if (this.#waiters.length === 0) return
    const w = this.#waiters
    this.#waiters = []
    for (const f of w) f()
  }

  /**
   * Wait until every spooled batch is acked (true), the stream is down, or
   * timeoutMs passes (false). Whatever is not acked stays in the spool.
   */
  async flush (timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs
    for (;;) {
      if (this.#o.spool.pendingBatches === 0 && this.#evictedInFlight.size === 0) return true
      if (!this.#up || Date.now() >= end) return false
      this.#pump()
      await new Promise<void>(resolve => {
        const t = setTimeout(resolve, Math.min(100, Math.max(0, end - Date.now())))
        this.#waiters.push(() => { clearTimeout(t); resolve() })
      })
    }
  }

  stats (): ShipperStats {
    const spool = this.#o.spool
    let unsent = 0
    if (this.#up) unsent = Math.max(0, spool.nextSeq - Math.max(this.#cursor, spool.ackedThrough + 1))
    else unsent = spool.pendingBatches
    let evicted = 0
    for (const n of this.#evictedInFlight.values()) evicted += n
    return { ...this.#s, connected: this.#up, inflight: this.#inflight.size, inflightBytes: this.#inflight.bytes, unsent, evictedInFlightRecords: evicted }
  }

  async close (): Promise<void> {
    if (this.#stopped) return
    this.#stopped = true
    clearInterval(this.#watchdog)
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    if (this.#pumpTimer !== undefined) clearTimeout(this.#pumpTimer)
    const call = this.#call
    this.#gen++
    this.#up = false
    this.#call = undefined
    if (call !== undefined) {
      call.on('error', () => {})
      await new Promise<void>(resolve => {
        const t = setTimeout(() => { call.cancel(); resolve() }, 500)
        call.once('status', () => { clearTimeout(t); resolve() })
        call.once('close', () => { clearTimeout(t); resolve() })
        call.end()
      })
    }
    this.#client.close()
    this.#inflight.clear()
    this.#loseEvictedInFlight()
    this.#wake()
  }
}
