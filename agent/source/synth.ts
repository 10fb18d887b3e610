import type { DrainResult, KernelCounters, RingSource } from '../../bpf/types.js'
import { AF_INET, AF_INET6, HEADER, KDIR, KIND, NET_EVENT, RST_REASON_UNKNOWN, TCP } from '../../bpf/abi.js'
import { encodeNetRecord, readNetRecord, type RawNetRecord } from '../../bpf/records.js'

// Synthetic NET_EVENTS records: the exact byte layout the BPF programs write
// (bpf/events.h, encoded by bpf/records.ts), so the whole agent pipeline, its
// tests and its benchmark run without a kernel. decodeNetRecords
// (agent/normalize/net.ts) turns the bytes into the OCSF the kernel's records
// would give.

/** Linux's SK_RST_REASON_NO_SOCKET and the names the synthetic "kernel" reports. */
export const SYNTH_NO_SOCKET_REASON = 1
export const SYNTH_RST_REASONS: Record<number, string> = { 0: 'NOT_SPECIFIED', 1: 'NO_SOCKET' }

// ---------------------------------------------------------------------------
// The seeded generator.
//
// Record i of a stream is a pure function of (seed, i): its shape comes from a
// hash of (seed, i mod TEMPLATE), and its identity is written into the remote
// address so a test can name every record that reached the collector:
//   IPv4: raddr 10.b2.b1.b0 with (b2,b1,b0) the low 24 bits of i,
//         rport 20000 + (i >>> 24)
//   IPv6: raddr fd00::1:<i >>> 16>:<i & 0xffff>
// synthIdOf() reads it back from a decoded OCSF record.

const TEMPLATE = 1024

function mix32 (x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d)
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b)
  return (x ^ (x >>> 16)) >>> 0
}

/** The shape record i of a stream seeded with `seed` has (before its identity is stamped in). */
export function synthShape (seed: number, i: number): RawNetRecord {
  const h = mix32(mix32(seed) ^ i)
  const h2 = mix32(h)
  const v6 = (h & 0xff) < 13 // ~5%
  const family = v6 ? AF_INET6 : AF_INET
  const laddr = v6 ? 'fd00::1' : '127.0.0.1'
  const base: RawNetRecord = {
    kind: KIND.NET_RESET,
    cpu: h2 & 1,
    bootNs: 0n,
    pid: 0,
    tgid: 0,
    comm: '',
    family,
    laddr,
    raddr: v6 ? 'fd00:0:0:0:0:1::' : '10.0.0.0',
    lport: 1 + (h2 % 1000),
    rport: 20000,
    protocol: 6,
    direction: KDIR.INBOUND,
    oldstate: TCP.CLOSE,
    newstate: 0,
    icmpType: 0,
    icmpCode: 0,
    reason: SYNTH_NO_SOCKET_REASON,
    sock: 0n,
    durationNs: 0n,
  }
  const pick = (h >>> 8) % 100
  if (pick < 70) return base // scan probe answered by an RST with no socket
  if (pick < 80) { // UDP probe answered by ICMP port unreachable
    return { ...base, kind: v6 ? KIND.NET_ICMP6 : KIND.NET_ICMP, protocol: 17, icmpType: v6 ? 1 : 3, icmpCode: v6 ? 4 : 3, reason: RST_REASON_UNKNOWN, oldstate: 0 }
  }
  const pid = 1000 + (h2 % 30000)
  if (pick < 88) { // outbound connect
    return { ...base, kind: KIND.NET_STATE, direction: KDIR.OUTBOUND, oldstate: TCP.CLOSE, newstate: TCP.SYN_SENT, pid, tgid: pid, comm: 'curl', sock: BigInt(h2) << 8n, reason: RST_REASON_UNKNOWN }
  }
  if (pick < 95) { // inbound connection established
    return { ...base, kind: KIND.NET_STATE, direction: KDIR.INBOUND, oldstate: TCP.SYN_RECV, newstate: TCP.ESTABLISHED, lport: 443, sock: BigInt(h2) << 8n, reason: RST_REASON_UNKNOWN }
  }
  // close of an outbound connection
  return { ...base, kind: KIND.NET_STATE, direction: KDIR.OUTBOUND, oldstate: TCP.ESTABLISHED, newstate: TCP.CLOSE, sock: BigInt(h2) << 8n, durationNs: BigInt(1_000_000 + (h2 % 5_000_000)), reason: RST_REASON_UNKNOWN }
}

/** Stamp record identity `i` into an encoded record at `off` (see synthIdOf). */
function stampId (buf: Uint8Array, dv: DataView, off: number, i: number, bootNs: number): void {
  dv.setUint32(off + HEADER.boot_ns, bootNs >>> 0, true)
  dv.setUint32(off + HEADER.boot_ns + 4, Math.floor(bootNs / 4294967296), true)
  const a = off + NET_EVENT.raddr
  if (dv.getUint16(off + NET_EVENT.family, true) === AF_INET) {
    buf[a + 1] = (i >>> 16) & 0xff
    buf[a + 2] = (i >>> 8) & 0xff
    buf[a + 3] = i & 0xff
    dv.setUint16(off + NET_EVENT.rport, 20000 + Math.floor(i / 16777216), true)
  } else {
    const hi = Math.floor(i / 65536)
    buf[a + 12] = (hi >>> 8) & 0xff
    buf[a + 13] = hi & 0xff
    buf[a + 14] = (i >>> 8) & 0xff
    buf[a + 15] = i & 0xff
  }
}

/** Record i of a stream, fully: its shape with identity and boot time stamped in. */
export function synthRecord (seed: number, i: number, bootNs = 0): RawNetRecord {
  const buf = new Uint8Array(NET_EVENT.SIZEOF)
  encodeNetRecord(synthShape(seed, i % TEMPLATE), buf, 0)
  stampId(buf, new DataView(buf.buffer), 0, i, bootNs)
  return readNetRecord(buf, 0)
}

interface EndpointLike { ip?: string, port?: number }

/** The stream index a decoded synthetic record carries, or undefined if it carries none. */
export function synthIdOf (rec: { src_endpoint?: EndpointLike, dst_endpoint?: EndpointLike }): number | undefined {
  for (const ep of [rec.src_endpoint, rec.dst_endpoint]) {
    const ip = ep?.ip
    if (ip === undefined) continue
    if (ip.startsWith('10.')) {
      const p = ip.split('.').map(Number)
      return ((ep?.port ?? 20000) - 20000) * 16777216 + (p[1] << 16) + (p[2] << 8) + p[3]
    }
    if (ip.startsWith('fd00::1:')) {
      const g = ip.slice('fd00::1:'.length).split(':').map(x => parseInt(x, 16))
      if (g.length === 2) return g[0] * 65536 + g[1]
    }
  }
  return undefined
}

export interface SynthOptions {
  /** seed of the record shapes (default 1) */
  seed?: number
  /** index of the first record (default 0) */
  startId?: number
  /** stop after this many records (default: endless) */
  total?: number
  /**
   * records per second. 0 (default) = flood: every drain fills what it is
   * given, like a ring that is never empty.
   */
  rate?: number
  /**
   * simulated ring capacity in bytes (rate mode only, default 8 MiB): records
   * that arrive while this much is waiting are dropped and counted as
   * reservation failures, as the kernel does.
   */
  ringBytes?: number
}

/** Nanoseconds on CLOCK_MONOTONIC: the same clock in every thread. */
function monoNs (): number {
  return Number(process.hrtime.bigint())
}

/** CLOCK_REALTIME - the synthetic boot clock, for DecodeContext.bootToWallNs. */
export function synthBootToWallNs (): number {
  return Date.now() * 1e6 - monoNs()
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4))

/**
 * A RingSource that generates records instead of reading a kernel ring. It
 * blocks in drain() the way the real one does, so it stands in for it
 * anywhere, including inside a consumer thread.
 */
export class SynthSource implements RingSource {
  readonly #seed: number
  readonly #total: number
  readonly #rate: number
  readonly #ringRecords: number
  readonly #template: Uint8Array
  readonly #startNs = monoNs()
  #next: number
  readonly #first: number
  /** records generated so far (emitted + dropped) */
  #arrived = 0
  #emitted = 0
  #dropped = 0
  #closed = false

  constructor (opts: SynthOptions = {}) {
    this.#seed = opts.seed ?? 1
    this.#first = this.#next = opts.startId ?? 0
    this.#total = opts.total ?? Infinity
    this.#rate = opts.rate ?? 0
    this.#ringRecords = Math.max(1, Math.floor((opts.ringBytes ?? 8 * 1024 * 1024) / NET_EVENT.SIZEOF))
    this.#template = new Uint8Array(TEMPLATE * NET_EVENT.SIZEOF)
    for (let j = 0; j < TEMPLATE; j++) encodeNetRecord(synthShape(this.#seed, j), this.#template, j * NET_EVENT.SIZEOF)
  }

  /** records that arrived by now, under the rate (including dropped ones) */
  #arrivedBy (nowNs: number): number {
    if (this.#rate <= 0) return this.#total
    return Math.min(this.#total, Math.floor((nowNs - this.#startNs) * this.#rate / 1e9))
  }

  #account (nowNs: number): number {
    const arrived = this.#arrivedBy(nowNs)
    if (arrived > this.#arrived) {
      this.#arrived = arrived
      const waiting = this.#arrived - this.#emitted - this.#dropped
      if (this.#rate > 0 && waiting > this.#ringRecords) {
        // the ring is full: the newest arrivals fail to reserve, as in the kernel
        const lost = waiting - this.#ringRecords
        this.#dropped += lost
      }
    }
    return this.#rate <= 0 ? this.#total - this.#emitted - this.#dropped : this.#arrived - this.#emitted - this.#dropped
  }

  drain (target: SharedArrayBuffer, offset: number, length: number, timeoutMs: number): DrainResult {
    if (this.#closed) throw new Error('drain on a closed SynthSource')
    let now = monoNs()
    let avail = this.#account(now)
    if (avail <= 0 && timeoutMs > 0) {
      // block like the ring does: until the next record is due, or the timeout
      const more = this.#emitted + this.#dropped < this.#total
      const dueMs = more && this.#rate > 0 ? Math.max(0, ((this.#arrived + 1) * 1e9 / this.#rate + this.#startNs - now) / 1e6) : timeoutMs
      Atomics.wait(sleepCell, 0, 0, Math.min(timeoutMs, Math.max(dueMs, 0.05)))
      now = monoNs()
      avail = this.#account(now)
    }
    const n = Math.min(Math.max(avail, 0), Math.floor(length / NET_EVENT.SIZEOF))
    if (n <= 0) return { bytes: 0, records: 0 }
    const out = new Uint8Array(target, offset, n * NET_EVENT.SIZEOF)
    const dv = new DataView(target, offset, n * NET_EVENT.SIZEOF)
    // drops consume no identity: the emitted ids stay consecutive, so a
    // test knows exactly which ids must arrive
    let id = this.#next
    let written = 0
    while (written < n) {
      const t = id % TEMPLATE
      const run = Math.min(n - written, TEMPLATE - t)
      out.set(this.#template.subarray(t * NET_EVENT.SIZEOF, (t + run) * NET_EVENT.SIZEOF), written * NET_EVENT.SIZEOF)
      for (let k = 0; k < run; k++) stampId(out, dv, (written + k) * NET_EVENT.SIZEOF, id + k, now)
      written += run
      id += run
    }
    this.#next = id
    this.#emitted += n
    return { bytes: n * NET_EVENT.SIZEOF, records: n }
  }

  pending (): number {
    return Math.max(0, this.#account(monoNs())) * NET_EVENT.SIZEOF
  }

  close (): void {
    this.#closed = true
  }

  /** true once every record of a finite stream was emitted or dropped */
  get exhausted (): boolean {
    return this.#emitted + this.#dropped >= this.#total
  }

  /** ids [firstId, nextId) were emitted, in order: drops consume no id, so the emitted ids stay consecutive */
  stats (): { emitted: number, dropped: number, firstId: number, nextId: number } {
    return { emitted: this.#emitted, dropped: this.#dropped, firstId: this.#first, nextId: this.#next }
  }

  /**
   * Kernel-shaped counters: every synthetic record counts as a
   * tcp_send_reset match when it arrives (in the ring or dropped).
   */
  counters (): KernelCounters {
    this.#account(monoNs())
    const matched = this.#rate > 0 ? this.#arrived : this.#emitted + this.#dropped
    return {
      state: { matched: 0, reserveFailed: 0 },
      reset: { matched, reserveFailed: this.#dropped },
      icmp: { matched: 0, reserveFailed: 0 },
      readFailed: 0,
    }
  }
}
