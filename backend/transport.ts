import * as grpc from '@grpc/grpc-js'
import type { Limits, StreamLimits, StreamRefusal } from './limits.js'

// The collector's transport bounds. A message is received whole before it is
// decoded, so the receive size is what one stream can make the collector
// buffer: it follows max_batch_bytes (plus room for the other Batch fields),
// and grpc-js ends a stream whose message announces more, from its 5-byte
// length prefix, before buffering any of it. Streams are capped per
// connection by HTTP/2 (grpc-js' max_concurrent_streams), and in total and by
// connection here (grpc-js has no connection cap): the gate counts open
// streams per peer address (one per connection) and refuses past a cap.
//
// grpc-js does expose Node's HTTP/2 maxSessionMemory
// ('grpc-node.max_session_memory'; it sets it to unlimited by default, as
// Node degrades badly at the limit). It is not set here: an oversized message
// is refused from its length prefix, before the session buffers it (the storm
// test sees the backend's RSS unchanged), and the bound would refuse streams
// of honest agents whose batches are in flight.

/** Room for the Batch fields other than records (host id, hostname, version, counters). */
export const BATCH_OVERHEAD_BYTES = 64 * 1024

/** grpc-js' own words when it ends a stream for a message over the receive size. */
const OVERSIZE = /^Received message (larger than max|that decompresses to a size larger than)/

export interface Refused { reason: StreamRefusal, message: string }

export function serverOptions (limits: Limits, streams: StreamLimits, onOversize: (peer: string, details: string) => void): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': limits.maxBatchBytes + BATCH_OVERHEAD_BYTES,
    'grpc.max_send_message_length': 4 * 1024 * 1024,
    'grpc.max_concurrent_streams': streams.maxStreamsPerConnection,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    // channelz (grpc-js' introspection service, on by default) keeps
    // per-session and per-call trackers nothing here reads: ~1 KiB of heap per
    // agent session (BENCHMARKS.md, scale)
    'grpc.enable_channelz': 0,
    interceptors: [oversizeObserver(onOversize)],
  }
}

/**
 * grpc-js ends an oversized message's stream from inside its base call
 * (server-interceptors.ts handleDataFrame → sendStatus), past every
 * interceptor's responder, and the handler only sees a cancellation. The
 * first interceptor is handed that base call, so it watches the base call's
 * own sendStatus for grpc-js' RESOURCE_EXHAUSTED.
 */
function oversizeObserver (onOversize: (peer: string, details: string) => void): grpc.ServerInterceptor {
  return (_method, call) => {
    const base = call as grpc.ServerInterceptingCallInterface
    const send = base.sendStatus.bind(base)
    base.sendStatus = (status) => {
      if (status.code === grpc.status.RESOURCE_EXHAUSTED && OVERSIZE.test(status.details ?? '')) onOversize(base.getPeer(), status.details)
      send(status)
    }
    return new grpc.ServerInterceptingCall(base)
  }
}

/** Open Ship streams, in total and per connection, against their caps. */
export class StreamGate {
  readonly #limits: StreamLimits
  readonly #perPeer = new Map<string, number>()
  #streams = 0

  constructor (limits: StreamLimits) {
    this.#limits = limits
  }

  get streams (): number { return this.#streams }
  get connections (): number { return this.#perPeer.size }

  /** Take a place for a stream from `peer`, or say which cap refuses it. */
  admit (peer: string): Refused | undefined {
    const l = this.#limits
    if (this.#streams >= l.maxStreams) {
      return { reason: 'max_streams', message: `the collector already has ${this.#streams} Ship streams open, its cap max_streams ${l.maxStreams}; this stream was refused: reconnect later, or raise the collector's --max-streams` }
    }
    const n = this.#perPeer.get(peer) ?? 0
    if (n === 0 && this.#perPeer.size >= l.maxConnections) {
      return { reason: 'max_connections', message: `the collector already has Ship streams open on ${this.#perPeer.size} connections, its cap max_connections ${l.maxConnections}; this stream was refused: share connections between hosts, reconnect later, or raise the collector's --max-connections` }
    }
    this.#perPeer.set(peer, n + 1)
    this.#streams++
    return undefined
  }

  release (peer: string): void {
    const n = this.#perPeer.get(peer)
    if (n === undefined) return
    if (n <= 1) this.#perPeer.delete(peer)
    else this.#perPeer.set(peer, n - 1)
    this.#streams--
  }
}
