import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openRing, type RingSource } from '../../bpf/index.js'
import { recordOffsets } from '../../bpf/records.js'

// Draining a probe's ring in a test, and tracefs copies to configure a probe
// as if the kernel lacked a tracepoint or a field.

const slab = new SharedArrayBuffer(8 << 20)

/** Every record waiting in the ring now, decoded (unknown kinds left out). */
export function drainRecords<T> (ring: RingSource, decode: (buf: Uint8Array, off: number) => T | undefined): T[] {
  const out: T[] = []
  const buf = new Uint8Array(slab)
  for (;;) {
    const r = ring.drain(slab, 0, slab.byteLength, 0)
    if (r.records === 0) return out
    for (const off of recordOffsets(buf, 0, r.bytes)) {
      const rec = decode(buf, off)
      if (rec !== undefined) out.push(rec)
    }
  }
}

/**
 * Opens a probe for the test (closed at teardown) and returns it with a
 * function that drains its ring; what waited before is thrown away.
 */
export function openProbe<P extends { ringFd: number, close: () => void }, R> (
  t: { teardown: (fn: () => void) => void }, open: () => P, decode: (buf: Uint8Array, off: number) => R | undefined,
): { probe: P, records: () => R[] } {
  const probe = open()
  t.teardown(() => probe.close())
  const ring = openRing(probe.ringFd)
  t.teardown(() => ring.close())
  drainRecords(ring, decode)
  return { probe, records: () => drainRecords(ring, decode) }
}

/**
 * A copy of the tracepoint formats `tps` ('category/name') from `from`
 * (default: the live tracefs), each passed through `edit`.
 */
export function tracefsCopy (tps: readonly string[], edit: (tp: string, text: string) => string | undefined = (_, x) => x, from = '/sys/kernel/tracing'): string {
  const dir = mkdtempSync(join(tmpdir(), 'picket-tracefs-'))
  for (const tp of tps) {
    const text = edit(tp, readFileSync(join(from, 'events', tp, 'format'), 'utf8'))
    if (text === undefined) continue
    mkdirSync(join(dir, 'events', tp), { recursive: true })
    writeFileSync(join(dir, 'events', tp, 'format'), text)
  }
  return dir
}

/** A full copy of a fixture tracefs, to add to or take from. */
export function fixtureCopy (fixture: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'picket-tracefs-'))
  cpSync(fixture, dir, { recursive: true })
  return dir
}

export const json = (v: unknown): string => JSON.stringify(v, (_, x) => typeof x === 'bigint' ? x.toString() : x)

/** The python3 binary itself (not a pyenv shim that forks and execs on the way), or undefined. */
export function python (): string | undefined {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], { encoding: 'utf8' })
  return r.status === 0 ? r.stdout.trim() : undefined
}

/** Calls fn and returns what it threw (undefined if nothing). */
export function thrown (fn: () => unknown): unknown {
  try { fn() } catch (err) { return err }
  return undefined
}
