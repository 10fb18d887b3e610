// The kernel-facing API the agent builds on. bpf/index.ts implements it over
// the native addon (bpf/addon); nothing else touches the addon directly.

export interface DrainResult {
  /** bytes copied into the target region: whole records, back to back */
  bytes: number
  /** records copied */
  records: number
}

/**
 * A reader of one BPF ring buffer. Safe to create in any worker thread from
 * the ring's map fd (the fd stays valid while the NetProbe that owns it is open).
 */
export interface RingSource {
  /**
   * Wait up to `timeoutMs` for records (returns early on a kernel wakeup),
   * then copy as many whole records as fit into target[offset, offset+length).
   * Records that do not fit stay in the ring for the next call.
   */
  drain: (target: SharedArrayBuffer, offset: number, length: number, timeoutMs: number) => DrainResult
  /** bytes waiting in the ring right now */
  pending: () => number
  close: () => void
}

export interface ProgramCounters {
  /** events that passed the program's filter (= submitted + reserveFailed) */
  matched: number
  /** of those, records lost because the ring was full */
  reserveFailed: number
}

export interface KernelCounters {
  state: ProgramCounters
  reset: ProgramCounters
  icmp: ProgramCounters
  /** bpf_probe_read_kernel of a tracepoint record failed */
  readFailed: number
  /** events folded into a summary record of their flow (not drops; matched and reserveFailed count records, summaries among them) */
  folded?: number
}

export interface ProgStats {
  name: string
  /** tracepoint hits (needs kernel.bpf_stats_enabled=1, else 0) */
  runCount: number
  runTimeNs: number
  /** times the program was skipped because it was already running on the CPU */
  recursionMisses: number
}

/** What the decoder needs to know about the running kernel. */
export interface KernelDecodeInfo {
  rstReasons: Record<number, string>
  noSocketReason: number
}
