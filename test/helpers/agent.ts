import { Writable } from 'node:stream'
import { setEnvironmentData } from 'node:worker_threads'
import pino from 'pino'
import type { AgentHandle, AgentStats } from '../../agent/index.js'
import { synthIdOf } from '../../agent/source/synth.js'
import type { TestCollector } from './collector.js'

// Small helpers for tests that run the agent in-process.

/** A pino logger that keeps its lines for assertions (and prints nothing). */
export function captureLog (level = 'info'): { log: pino.Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, cb) { lines.push(JSON.parse(String(chunk))); cb() } })
  return { log: pino({ level }, stream), lines }
}

/** Poll the agent's stats until `pred` holds; fails with the last stats after timeoutMs. */
export async function waitForStats (agent: AgentHandle, pred: (s: AgentStats) => boolean, timeoutMs = 15_000, what = 'agent condition'): Promise<AgentStats> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const s = await agent.stats()
    if (pred(s)) return s
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${JSON.stringify({ captured: s.captured, spooled: s.spooledBatches, shipper: s.shipper, spool: s.spool, drops: s.drops })}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/** The synthetic ids of the collector's accepted records, in seq order. */
export function receivedIds (c: TestCollector): Array<number | undefined> {
  return c.records().map(r => synthIdOf(r as { src_endpoint?: { ip?: string, port?: number }, dst_endpoint?: { ip?: string, port?: number } }))
}

/**
 * test/fixtures/crashing-decoder.ts, set to exit mid-task on the Nth slab any
 * of its pool's workers starts: the counter is a SharedArrayBuffer that every
 * worker started from now on gets through worker_threads' environment data.
 */
export function crashingDecoder (onTask: number): URL {
  setEnvironmentData('picket:crashing-decoder', { onTask, counter: new SharedArrayBuffer(4) })
  return new URL('../fixtures/crashing-decoder.ts', import.meta.url)
}

/** [from, from + n) */
export function range (from: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => from + i)
}

/** First index where two arrays differ, for a readable failure. */
export function firstDifference (a: readonly unknown[], b: readonly unknown[]): string {
  const n = Math.max(a.length, b.length)
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return `index ${i}: got ${String(a[i])}, want ${String(b[i])} (lengths ${a.length} / ${b.length})`
  return 'none'
}
