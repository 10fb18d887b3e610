import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { rootPath } from '../../../shared/paths.js'
import { metric, scrape } from './metrics.js'
import { sleep, totalCpu, waitExit } from './proc.js'

// A real `picket agent` around one storm, for the capture and dns benchmarks:
// its CPU from the storm's start until every record is drained, decoded and
// acked, and what its metrics counted meanwhile.

export interface AgentRun<S> {
  storm: S
  /** agent CPU seconds (user + system, all threads) */
  cpu: number
  captured: number
  emitted: number
  dropped: number
  recursion: number
  /** records the collector acked */
  acked: number
}

export async function until (what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    try { if (await fn()) return } catch {}
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

export async function withAgent<S> (o: { collector: string, acked: () => number, metricsPort: number, hostId: string, classes: string, storm: () => Promise<S> }): Promise<AgentRun<S>> {
  const data = mkdtempSync(join(tmpdir(), 'picket-bench-agent-'))
  const p = spawn(process.execPath, [rootPath('bin', 'picket.js'), 'agent', '--collector', o.collector, '--data', data,
    '--metrics', String(o.metricsPort), '--host-id', o.hostId, '--log-level', 'warn', '--class', o.classes], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  p.stderr.on('data', d => { stderr += String(d) })
  const url = `http://127.0.0.1:${o.metricsPort}/metrics`
  try {
    await until('the agent to connect', async () => metric(await scrape(url), 'picket_agent_connected') === 1, 20_000)
    await sleep(300)
    const m0 = await scrape(url)
    const acked0 = o.acked()
    const cpu0 = totalCpu(p.pid!)
    const storm = await o.storm()
    // wait until the ring is drained, everything decoded and acked
    let last = -1
    await until('the agent to ship the storm', async () => {
      const m = await scrape(url)
      const cap = metric(m, 'picket_agent_records_captured_total')
      const done = cap === last && metric(m, 'picket_agent_spool_pending_batches') === 0 && metric(m, 'picket_agent_queue_depth', { queue: 'decoder' }) === 0
      last = cap
      return done
    }, 60_000)
    const cpu1 = totalCpu(p.pid!)
    // kernel counters reach the metrics on the agent's 1 s stats tick
    await sleep(1300)
    const m1 = await scrape(url)
    const d = (name: string, labels?: Record<string, string>): number => metric(m1, name, labels) - metric(m0, name, labels)
    return {
      storm,
      cpu: cpu1 - cpu0,
      captured: d('picket_agent_records_captured_total'),
      emitted: d('picket_agent_kernel_events_total'),
      dropped: d('picket_agent_drops_total'),
      recursion: d('picket_agent_drops_total', { cause: 'kernel_recursion' }),
      acked: o.acked() - acked0,
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}; agent stderr:\n${stderr.slice(-3000)}`)
  } finally {
    p.kill('SIGINT')
    await waitExit(p)
    rmSync(data, { recursive: true, force: true })
  }
}
