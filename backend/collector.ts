import * as grpc from '@grpc/grpc-js'
import { readFileSync } from 'node:fs'
import { PicketError, type ErrorCode } from '../shared/errors.js'
import type { Logger } from '../shared/logger.js'
import { checkHostId, checkInstance } from '../shared/host-id.js'
import { formatHostPort, isLoopback } from '../shared/hostport.js'
import { collectorService, type Ack, type AckStatus, type Batch } from '../shared/proto/index.js'
import type { Bridge, SubmitResult } from './bridge/types.js'
import type { DetectionRefusalReason } from './detection/protocol.js'
import type { HostTracker } from './hosts.js'
import { ackLimit, type Limits, type RefusalReason, type StreamLimits } from './limits.js'
import { LogLimiter } from './log-limit.js'
import type { Metrics } from './metrics.js'
import { serverOptions, StreamGate } from './transport.js'

// The gRPC Ship server. Per batch: host id and instance well-formed
// (shared/host-id.ts) and the same for the whole stream (the host id equal to
// the client certificate's name under mTLS); seq a positive integer; limits
// on bytes (records and context), record count and string length here, string length and nesting
// depth again record by record in the worker's scan. A refused batch gets Ack REFUSED with the gRPC code, the
// PICKET_ERR_ code, the limit's name and what to do; the stream stays up.
// Everything else is acked only once the detection plane has accepted it.
// Every ack echoes the batch's instance. Streams, connections and the receive
// size are bounded (transport.ts).
//
// One live stream per (host, instance): a second one is the same agent
// reconnecting while its old stream is still half-open (a dead peer is only
// noticed by keepalive, 40 s on), so the newer stream takes over and the older
// is ended with ABORTED; refusing the newer would shut the agent out until
// then. Streams of one host with different instances coexist. The legacy
// instance '' (agents from before instance ids) is exempt, as streams were
// before.

export interface TlsFiles { cert: string, key: string, clientCa?: string }

export interface CollectorOptions {
  host: string
  port: number
  /** listen on a non-loopback address without mTLS (host ids are then unauthenticated) */
  allowRemote: boolean
  tls: TlsFiles | undefined
  limits: Limits
  streams: StreamLimits
  bridge: Bridge
  metrics: Metrics
  hosts: HostTracker
  logger: Logger
  /** batches of one stream in flight before the stream is paused (HTTP/2 flow control pushes back) */
  maxInFlightPerStream?: number
  /** hand gRPC's per-message buffer to the worker instead of copying it (default true) */
  transferBuffers?: boolean
}

const S = grpc.status

/** Each reason the detection plane refuses a batch for: its gRPC status, and the reason it is counted under. */
const DETECTION_REFUSALS: Readonly<Record<DetectionRefusalReason, { code: grpc.status, reason: RefusalReason }>> = {
  max_records: { code: S.RESOURCE_EXHAUSTED, reason: 'max_records' },
  max_string_bytes: { code: S.INVALID_ARGUMENT, reason: 'max_string_bytes' },
  max_depth: { code: S.INVALID_ARGUMENT, reason: 'max_depth' },
  decode: { code: S.INVALID_ARGUMENT, reason: 'decode' },
  invalid_record: { code: S.INVALID_ARGUMENT, reason: 'invalid_record' },
  host_id: { code: S.PERMISSION_DENIED, reason: 'host_id' },
  // the worker failed on a batch it could read no further: counted with the undecodable ones
  internal: { code: S.INTERNAL, reason: 'decode' },
}

/**
 * May we detach `records.buffer`? grpc-js (1.14, stream-decoder.ts) gathers
 * each framed message into its own Buffer.concat() allocation; messages of
 * 4 KiB and more get an ArrayBuffer of their own, which it drops once the
 * message is deserialized, and the records and context are slices of it.
 * When the ArrayBuffer is no bigger than the records and context plus the
 * other Batch fields, nothing else lives in it and the worker may take it
 * whole. Otherwise (small messages share Node's buffer pool) we copy.
 */
function ownsBuffer (records: Buffer, context: Uint8Array, maxOverhead: number): boolean {
  const ab = records.buffer
  if (!(ab instanceof ArrayBuffer) || (context.byteLength > 0 && context.buffer !== ab)) return false
  return ab.byteLength >= 4096 && ab.byteLength - records.byteLength - context.byteLength <= maxOverhead
}

const NO_CONTEXT = new Uint8Array(0)

/** The bytes of a batch that count toward max_batch_bytes: its records and its context. */
function batchBytes (b: Batch | undefined): number {
  return (b?.records?.byteLength ?? 0) + (b?.context?.byteLength ?? 0)
}

/** The instance an ack echoes for a batch that may not be well-formed: the agent matches acks by it. */
function ackInstance (b: Batch | undefined): string {
  return String(b?.instance ?? '').slice(0, 256)
}

function peerNames (call: grpc.ServerDuplexStream<Batch, Ack>): string[] | undefined {
  const cert = call.getAuthContext()?.sslPeerCertificate
  if (cert === undefined || cert === null) return undefined
  const names: string[] = []
  const cn = (cert.subject as unknown as Record<string, string | string[]> | undefined)?.CN
  if (typeof cn === 'string') names.push(cn)
  else if (Array.isArray(cn)) names.push(...cn)
  for (const part of (cert.subjectaltname ?? '').split(/,\s*/)) {
    const m = /^(DNS|URI):(.+)$/.exec(part)
    if (m !== null) names.push(m[2])
  }
  return names
}

export class Collector {
  readonly #o: Required<CollectorOptions>
  readonly #server: grpc.Server
  readonly #streams = new Set<grpc.ServerDuplexStream<Batch, Ack>>()
  readonly #gate: StreamGate
  /** one line per refusal reason per 10 s: picket_collector_refusals_total counts each batch */
  readonly #refusalLog: LogLimiter
  /** the live stream of each (host, instance), as the function that ends it */
  readonly #owners = new Map<string, (by: string) => void>()
  #port = 0

  constructor (opts: CollectorOptions) {
    this.#o = { maxInFlightPerStream: 64, transferBuffers: true, ...opts }
    this.#refusalLog = new LogLimiter(opts.logger)
    const mtls = opts.tls?.clientCa !== undefined
    if (!isLoopback(opts.host) && !mtls && !opts.allowRemote) {
      throw new PicketError('PICKET_ERR_CONFIG', `the collector would listen on ${opts.host}:${opts.port} without mTLS, where any client can claim any host id; ` +
        'pass --tls-cert, --tls-key and --tls-client-ca for mTLS, listen on 127.0.0.1, or pass --allow-remote to accept unauthenticated agents')
    }
    this.#gate = new StreamGate(opts.streams)
    this.#server = new grpc.Server(serverOptions(opts.limits, opts.streams, (peer, details) => {
      opts.metrics.streamRefusals.inc({ reason: 'max_message_bytes' })
      opts.logger.warn({ peer, limit: 'max_batch_bytes' }, `${details}: grpc-js ended the Ship stream (RESOURCE_EXHAUSTED) before buffering the message; send batches under max_batch_bytes ${opts.limits.maxBatchBytes}, or raise the collector's --max-batch-bytes`)
    }))
    this.#server.addService(collectorService(), { Ship: (call: grpc.ServerDuplexStream<Batch, Ack>) => this.#ship(call) })
  }

  get port (): number { return this.#port }
  get streams (): number { return this.#streams.size }
  get connections (): number { return this.#gate.connections }

  async start (): Promise<{ host: string, port: number }> {
    const o = this.#o
    let creds: grpc.ServerCredentials
    if (o.tls !== undefined) {
      let key: Buffer, cert: Buffer, ca: Buffer | null
      try {
        key = readFileSync(o.tls.key)
        cert = readFileSync(o.tls.cert)
        ca = o.tls.clientCa !== undefined ? readFileSync(o.tls.clientCa) : null
      } catch (err) {
        throw new PicketError('PICKET_ERR_CONFIG', `TLS files cannot be read: ${(err as Error).message}; check --tls-cert, --tls-key and --tls-client-ca`)
      }
      creds = grpc.ServerCredentials.createSsl(ca, [{ private_key: key, cert_chain: cert }], ca !== null)
    } else {
      creds = grpc.ServerCredentials.createInsecure()
    }
    const addr = formatHostPort(o.host, o.port)
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(addr, creds, (err, port) => {
        if (err !== null) reject(new PicketError('PICKET_ERR_CONFIG', `the collector cannot listen on ${addr}: ${err.message}; pick another --listen address or stop what holds the port`))
        else resolve(port)
      })
    })
    return { host: o.host, port: this.#port }
  }

  #ship (call: grpc.ServerDuplexStream<Batch, Ack>): void {
    const o = this.#o
    const m = o.metrics
    const certNames = o.tls?.clientCa !== undefined ? peerNames(call) : undefined
    let streamHost: string | undefined
    let streamInstance = ''
    let owner = ''
    let inFlight = 0
    let paused = false
    let ended = false
    let closed = false
    let superseded = false
    const peer = call.getPeer()
    const refused = this.#gate.admit(peer)
    if (refused !== undefined) {
      m.streamRefusals.inc({ reason: refused.reason })
      o.logger.warn({ peer, limit: refused.reason }, refused.message)
      call.emit('error', { code: S.RESOURCE_EXHAUSTED, details: refused.message })
      return
    }
    this.#streams.add(call)
    m.streams.set(this.#streams.size)

    const finish = (): void => {
      if (closed) return
      closed = true
      this.#gate.release(peer)
      this.#streams.delete(call)
      m.streams.set(this.#streams.size)
      if (this.#owners.get(owner) === supersede) this.#owners.delete(owner)
    }
    const supersede = (by: string): void => {
      const details = `a newer Ship stream for host '${streamHost ?? ''}' instance '${streamInstance}' (from ${by}) took over this one; an agent keeps one stream`
      o.logger.info({ host: streamHost, instance: streamInstance, peer, by }, 'a newer Ship stream for the same host and instance took over; ending the older one')
      superseded = true
      finish()
      call.emit('error', { code: S.ABORTED, details, message: details })
    }
    const write = (ack: Ack): void => {
      if (closed || call.cancelled || call.destroyed) return
      call.write(ack)
    }
    const maybeEnd = (): void => {
      if (ended && inFlight === 0 && !closed) { finish(); call.end() }
    }
    const refuse = (b: Batch, reason: RefusalReason, error: ErrorCode, code: grpc.status, message: string, skip: boolean): void => {
      m.batches.inc({ status: 'REFUSED' })
      if (streamHost !== undefined && b.host_id === streamHost) {
        o.hosts.note(b.host_id, { records: 0, bytes: batchBytes(b) }, 'REFUSED', Date.now())
        if (skip) o.bridge.skip(b.host_id, streamInstance, b.seq)
      }
      this.#refused(b, reason, error, code, message, write, peer)
    }

    const onBatch = (b: Batch): void => {
      const recvAt = Date.now()
      const L = o.limits
      const bytes = batchBytes(b)
      m.bytes.inc(bytes)
      // identity first: nothing about a batch is trusted before we know whose it is
      const badId = checkHostId(b.host_id) ?? checkInstance(b.instance)
      if (badId !== undefined) {
        refuse(b, 'host_id', 'PICKET_ERR_HOST_ID', S.INVALID_ARGUMENT, badId, false)
        return
      }
      if (certNames !== undefined && !certNames.includes(b.host_id)) {
        refuse(b, 'host_id', 'PICKET_ERR_HOST_ID', S.PERMISSION_DENIED, `host_id '${b.host_id}' is not the name in this agent's client certificate (${certNames.join(', ') || 'none'}); an agent ships only as the host its certificate names`, false)
        return
      }
      if (streamHost === undefined) {
        streamHost = b.host_id
        streamInstance = b.instance ?? ''
        if (streamInstance !== '') {
          owner = `${streamHost}\0${streamInstance}`
          this.#owners.get(owner)?.(peer)
          this.#owners.set(owner, supersede)
        }
      } else if (b.host_id !== streamHost || (b.instance ?? '') !== streamInstance) {
        refuse(b, 'host_id', 'PICKET_ERR_HOST_ID', S.PERMISSION_DENIED, `this stream belongs to host '${streamHost}' instance '${streamInstance}' but the batch claims host '${b.host_id}' instance '${b.instance ?? ''}'; open one Ship stream per host and instance`, false)
        return
      }
      if (!Number.isSafeInteger(b.seq) || b.seq < 1) {
        refuse(b, 'seq', 'PICKET_ERR_SEQ', S.INVALID_ARGUMENT, `seq ${String(b.seq)} is not valid: seq starts at 1 for each host and goes up by one per batch`, false)
        return
      }
      if (bytes > L.maxBatchBytes) {
        refuse(b, 'max_batch_bytes', 'PICKET_ERR_LIMIT', S.RESOURCE_EXHAUSTED, `the batch's records and context are ${bytes} bytes, over max_batch_bytes ${L.maxBatchBytes}; send smaller batches (fewer records per batch) or raise the collector's --max-batch-bytes`, true)
        return
      }
      if (b.count > L.maxRecords) {
        refuse(b, 'max_records', 'PICKET_ERR_LIMIT', S.RESOURCE_EXHAUSTED, `the batch holds ${b.count} records, over max_records ${L.maxRecords}; send fewer records per batch or raise the collector's --max-records`, true)
        return
      }
      for (const [name, v] of [['hostname', b.hostname], ['agent_version', b.agent_version]] as const) {
        if (typeof v === 'string' && Buffer.byteLength(v) > L.maxStringBytes) {
          refuse(b, 'max_string_bytes', 'PICKET_ERR_LIMIT', S.INVALID_ARGUMENT, `the batch's ${name} is longer than max_string_bytes ${L.maxStringBytes}; shorten it or raise the collector's --max-string-bytes`, true)
          return
        }
      }
      inFlight++
      if (inFlight >= o.maxInFlightPerStream && !paused) { paused = true; call.pause() }
      const context = b.context ?? NO_CONTEXT
      const owned = o.transferBuffers && ownsBuffer(b.records, context, 4096 + Buffer.byteLength(b.hostname ?? '') + Buffer.byteLength(b.agent_version ?? '') + b.host_id.length)
      if (owned) m.transferred.inc()
      o.bridge.submit({ hostId: b.host_id, hostname: b.hostname ?? '', instance: streamInstance, seq: b.seq, count: b.count, records: b.records, context, owned, recvAt })
        .then((r: SubmitResult) => this.#answer(b, r, bytes, recvAt, write, peer), (err: Error) => {
          o.logger.error({ err, host: b.host_id, seq: b.seq }, 'bridge submit failed')
          write({ host_id: b.host_id, instance: streamInstance, seq: b.seq, status: 'RETRY', code: S.UNAVAILABLE, error: 'PICKET_ERR_BRIDGE', message: `the detection plane failed: ${err.message}; resend`, limit: '' })
        })
        // the ack may be out already: write none; unacked, the agent resends the batch after its ack timeout
        .catch((err: unknown) => this.#internal(err, b, undefined))
        .finally(() => {
          inFlight--
          if (paused && inFlight <= o.maxInFlightPerStream / 2) { paused = false; call.resume() }
          maybeEnd()
        })
    }
    call.on('data', (b: Batch) => {
      try { onBatch(b) } catch (err) { this.#internal(err, b, write) }
    })
    call.on('end', () => { ended = true; maybeEnd() })
    call.on('error', (err) => {
      if (!superseded && (err as { code?: number }).code !== S.CANCELLED) o.logger.warn({ err, host: streamHost, peer }, 'Ship stream failed')
      finish()
    })
    call.on('cancelled', finish)
    call.on('close', finish)
  }

  #answer (b: Batch, r: SubmitResult, bytes: number, recvAt: number, write: (a: Ack) => void, peer: string): void {
    const o = this.#o
    const m = o.metrics
    const now = Date.now()
    const instance = b.instance ?? ''
    let status: AckStatus
    switch (r.status) {
      case 'accepted':
        status = 'OK'
        m.records.inc(r.records)
        m.batchSeconds.observe((now - recvAt) / 1000)
        write({ host_id: b.host_id, instance, seq: b.seq, status })
        break
      case 'duplicate':
        status = 'DUPLICATE'
        write({ host_id: b.host_id, instance, seq: b.seq, status, message: `seq ${b.seq} of host ${b.host_id} instance '${instance}' was accepted before; nothing to resend` })
        break
      case 'refused': {
        status = 'REFUSED'
        const { code, reason } = DETECTION_REFUSALS[r.reason]
        this.#refused(b, reason, r.error, code, r.message, write, peer)
        break
      }
      case 'retry':
        status = 'RETRY'
        write({ host_id: b.host_id, instance, seq: b.seq, status, code: S.UNAVAILABLE, error: 'PICKET_ERR_BRIDGE', message: r.message })
        break
    }
    m.batches.inc({ status })
    o.hosts.note(b.host_id, {
      hostname: b.hostname,
      agentVersion: b.agent_version,
      records: r.status === 'accepted' ? r.records : 0,
      bytes,
      capturedTotal: b.captured_total,
      drops: b.drops,
    }, status, now)
  }

  /** A bug met on one batch: counted and logged, and answered RETRY when no ack went out yet; the stream and the process go on. */
  #internal (err: unknown, b: Batch, write: ((a: Ack) => void) | undefined): void {
    const o = this.#o
    o.metrics.internalErrors.inc({ where: 'collector' })
    try {
      o.logger.error({ err, host: b?.host_id?.slice(0, 256), seq: b?.seq }, 'the collector failed on a batch (a Picket bug: please report it with this line)')
      write?.({ host_id: b?.host_id ?? '', instance: ackInstance(b), seq: b?.seq ?? 0, status: 'RETRY', code: S.INTERNAL, error: 'PICKET_ERR_BRIDGE', message: 'the collector failed on this batch; resend it', limit: '' })
    } catch {}
  }

  /** Count, log and answer a refused batch. */
  #refused (b: Batch, reason: RefusalReason, error: ErrorCode, code: grpc.status, message: string, write: (a: Ack) => void, peer: string): void {
    this.#o.metrics.refusals.inc({ limit: reason })
    this.#refusalLog.warn(reason, { host: b.host_id?.slice(0, 256), seq: b.seq, limit: reason, peer }, message)
    write({ host_id: b.host_id ?? '', instance: ackInstance(b), seq: b.seq ?? 0, status: 'REFUSED', code, error, message, limit: ackLimit(reason) })
  }

  /** Stop accepting streams; give open streams `graceMs` to finish, then cut them. */
  async close (graceMs = 2000): Promise<void> {
    await new Promise<void>(resolve => {
      const timer = setTimeout(() => { this.#server.forceShutdown(); resolve() }, graceMs)
      for (const call of this.#streams) call.end()
      this.#server.tryShutdown(() => { clearTimeout(timer); resolve() })
    })
    this.#refusalLog.flush()
  }
}
