import { release } from 'node:os'
import { PicketError } from '../shared/errors.js'

// What the addon's errors (errno + step) mean to the user, and the ring size
// checks every probe's options share.

/** `caps`: the capabilities this probe needs besides root (the tracepoint probes: CAP_BPF and CAP_PERFMON). */
export function wrapNative (err: unknown, what: string, caps: readonly string[] = ['CAP_BPF', 'CAP_PERFMON']): PicketError {
  const e = err as Error & { errno?: number, step?: string }
  const errno = e.errno ?? 0
  // the verifier answers EACCES (or EINVAL) for a program it refuses; only
  // EPERM, or EACCES outside load, means we lack privileges
  if (errno === 1 /* EPERM */ || (errno === 13 /* EACCES */ && e.step !== 'load')) {
    return new PicketError('PICKET_ERR_BPF_PRIVILEGE',
      `${what}: permission denied — capture needs root, or the capabilities ${caps.slice(0, -1).join(', ')} and ${caps[caps.length - 1]} (rerun with sudo, or grant them: setcap ${caps.map(c => c.toLowerCase()).join(',')}+ep $(readlink -f $(which node)))`,
      { step: e.step, errno })
  }
  switch (e.step) {
    case 'open': return new PicketError('PICKET_ERR_BPF_OPEN', `${e.message}; rebuild with npm run build`, { errno })
    case 'load': return new PicketError('PICKET_ERR_BPF_LOAD', e.message, { errno })
    case 'attach': return new PicketError('PICKET_ERR_BPF_ATTACH', `${e.message} (kernel ${release()})`, { errno })
    default: return new PicketError('PICKET_ERR_BPF_MAP', `${what}: ${e.message}`, { errno })
  }
}

/** A BPF ring's size in bytes: a power of two, at least one page. */
export function ringBytesOption (name: string, value: number | undefined, fallback: number): number {
  const n = value ?? fallback
  if (!Number.isInteger(n) || n < 4096 || (n & (n - 1)) !== 0) {
    throw new PicketError('PICKET_ERR_CONFIG', `${name} must be a power of two of at least 4096, got ${n}`)
  }
  return n
}

/** Bytes waiting in a ring that force a consumer wakeup (default a quarter of the ring). */
export function wakeupBytesOption (name: string, value: number | undefined, ringBytes: number): number {
  const n = value ?? Math.floor(ringBytes / 4)
  if (!Number.isInteger(n) || n < 0) {
    throw new PicketError('PICKET_ERR_CONFIG', `${name} must be a non-negative integer, got ${n}`)
  }
  return n
}

/** A probe's ring size and wakeup threshold, checked. */
export function ringOptions (o: { ringBytes?: number, wakeupBytes?: number }, defaultRing: number): { ringBytes: number, wakeupBytes: number } {
  const ringBytes = ringBytesOption('ringBytes', o.ringBytes, defaultRing)
  return { ringBytes, wakeupBytes: wakeupBytesOption('wakeupBytes', o.wakeupBytes, ringBytes) }
}
