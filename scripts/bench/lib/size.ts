import type { BenchContext } from '../cli.js'

// Work sizes per mode. PICKET_BENCH_TINY=1 shrinks every benchmark to a
// seconds-long smoke run (test/scripts/bench-smoke.test.ts): it checks the
// benchmark works, and its numbers mean nothing.

export const TINY = process.env.PICKET_BENCH_TINY === '1'

export function pick<T> (ctx: BenchContext, s: { full: T, quick: T, tiny: T }): T {
  return TINY ? s.tiny : ctx.quick ? s.quick : s.full
}
