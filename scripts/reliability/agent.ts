import type { ChildProcess } from 'node:child_process'
import { sleep, waitExit } from '../bench/lib/proc.js'
import { freePort, spawnPicket, tailStderr } from '../bench/lib/spawn.js'

// `picket agent --source synth` as an operator runs it (a real process, real
// signals, its own spool on disk), and its Prometheus counters.

export interface AgentProc {
  proc: ChildProcess
  stderr: () => string
  /** a counter or gauge from its /metrics; NaN when it does not answer */
  metric: (name: string) => Promise<number>
  stop: (signal?: NodeJS.Signals) => Promise<number | string>
}

export interface AgentRun {
  collector: string
  dataDir: string
  hostId: string
  /** synthetic records to generate (0: only replay the spool) */
  total: number
  /** records per second */
  rate: number
}

export async function startAgentProc (o: AgentRun): Promise<AgentProc> {
  const port = await freePort()
  const proc = spawnPicket(['agent', '--collector', o.collector, '--data', o.dataDir, '--host-id', o.hostId, '--source', 'synth',
    '--synth-rate', String(o.rate), '--synth-total', String(o.total), '--metrics', String(port), '--slab-bytes', '32KiB',
    '--backoff-max', '500ms', '--log-level', 'warn'])
  const stderr = tailStderr(proc)
  const url = `http://127.0.0.1:${port}/metrics`
  const metric = async (name: string): Promise<number> => {
    try {
      const text = await (await fetch(url, { signal: AbortSignal.timeout(2000) })).text()
      const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
      return m === null ? NaN : Number(m[1])
    } catch {
      return NaN
    }
  }
  for (const end = Date.now() + 60_000; Number.isNaN(await metric('picket_agent_records_captured_total')); await sleep(100)) {
    if (proc.exitCode !== null || Date.now() > end) throw new Error(`picket agent did not start; its stderr:\n${stderr()}`)
  }
  return {
    proc,
    stderr,
    metric,
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal)
      return await waitExit(proc, 20_000)
    },
  }
}

/** Poll `pred` until it holds; false after `timeoutMs`. */
export async function until (pred: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  for (const end = Date.now() + timeoutMs; ; await sleep(everyMs)) {
    if (await pred()) return true
    if (Date.now() > end) return false
  }
}
