import type { NameCache } from './dns-names.js'
import type { ProcTableReader } from '../proctable/table.js'
import type { MsgpackWriter } from './pack.js'

// What a class's normaliser is: the one contract between the registry
// (registry.ts), the batch encoder (lean-batch.ts) and each class's file
// (net.ts, ...). Adding an OCSF class is one more file that exports a
// Normaliser and one line in registry.ts.

/** What decoding needs besides the raw records; set per decode task. */
export interface DecodeEnv {
  /** CLOCK_REALTIME - CLOCK_BOOTTIME, in nanoseconds */
  bootToWallNs: number
  /** sk_rst_reason value → name, parsed from the running kernel's tcp_send_reset format */
  rstReasons: Record<number, string>
  /** the value of SK_RST_REASON_NO_SOCKET on the running kernel */
  noSocketReason: number
  /** keep raw kernel fields under `unmapped` (default true) */
  unmapped?: boolean
  /** answer address → name, shared by every decode worker (dns-names.ts): DNS answers fill it */
  names?: NameCache
  /** the process table (agent/proctable): a record's process and its ancestry; absent, records carry what their own struct holds */
  procs?: ProcTableReader
}

export interface DecodeResult {
  /** raw records whose framing was sound, written or not */
  records: number
  /** lean records written */
  written: number
  /** raw records a normaliser consumed on purpose without writing one (Normaliser.write returned SKIP) */
  skipped: number
  /** records skipped because they were malformed (bad kind or size) */
  errors: number
  /** first malformed record's description, for the log */
  firstError?: string
}

/** One OCSF class: the raw record kinds it decodes and the lean records it writes. */
export interface Normaliser {
  /** the class's name, as `picket capture --class` takes it */
  readonly name: string
  readonly classUid: number
  /**
   * raw record kind (bpf/abi.ts KIND) → that record's exact size in bytes,
   * or [min, max] for a variable-sized record (exec, file: the kernel cuts
   * them after their last string)
   */
  readonly kinds: Readonly<Record<number, number | readonly [min: number, max: number]>>
  /**
   * The class's record shapes, declared once: each lists the dotted OCSF
   * field paths a lean record of that shape fills, in order. Captions the
   * schema derives from ids (shared/ocsf/lean.ts fillCaptions) are never
   * among them.
   */
  readonly shapes: ReadonlyArray<readonly string[]>
  /**
   * Write the raw record at byte `p` of `buf` (`dv` views the same memory) as
   * one lean record [shape0 + i, v1, v2, ...] for its shape i, straight from
   * the struct's fields, and return i; or write nothing and return -1 for a
   * record the class cannot express (it counts as a decode error), or SKIP
   * for one it reads on purpose without a record of its own (not an error).
   */
  write: (w: MsgpackWriter, buf: Uint8Array, dv: DataView, p: number, kind: number, shape0: number, env: DecodeEnv) => number
}

/** Normaliser.write's answer for a raw record consumed without an OCSF record of its own (a fork, a thread's exit). */
export const SKIP = -2
