import { openRing } from '../../bpf/index.js'

/**
 * The records a BPF ring received while `fn` ran (what was there before is
 * thrown away; late records get 100 ms), read from the drained bytes by `read`.
 */
export async function recordsDuring<T> (ringFd: number, fn: () => Promise<unknown>, read: (slab: SharedArrayBuffer, bytes: number) => T[]): Promise<T[]> {
  const ring = openRing(ringFd)
  const slab = new SharedArrayBuffer(4 << 20)
  try {
    while (ring.drain(slab, 0, slab.byteLength, 0).records > 0) { /* what came before */ }
    await fn()
    await new Promise(resolve => setTimeout(resolve, 100))
    const out: T[] = []
    for (;;) {
      const r = ring.drain(slab, 0, slab.byteLength, 10)
      if (r.records === 0) break
      out.push(...read(slab, r.bytes))
    }
    return out
  } finally {
    ring.close()
  }
}
