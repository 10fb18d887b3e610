import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { HealthReport } from '../../../backend/http.js'
import type { ChildIn, ChildOptions, ChildOut, StoredLatency } from './backend-protocol.js'
import { waitExit } from './proc.js'
import { spawnModule, tailStderr } from './spawn.js'

// The parent's handle on a backend child process (backend-child.ts).

export interface BackendProc {
  pid: number
  /** the child's alert store (open it read-only to look at what it wrote) */
  db: string
  address: string
  workers: number
  /** findings created so far, as the child reported them */
  created: StoredLatency[]
  /** restart the main thread's event-loop utilisation window */
  mark: () => Promise<void>
  /** main-thread event-loop utilisation, its delay p99, and the most batches queued to the detection workers, since mark() */
  elu: () => Promise<{ utilization: number, delayP99Ms: number, maxQueued: number }>
  flush: () => Promise<void>
  /** process.memoryUsage() of the child: rss, and the main thread's V8 heap and buffers */
  mem: () => Promise<NodeJS.MemoryUsage>
  findings: () => Promise<Array<{ rule: string, host: string | null, sources: string[] }>>
  /** the child's /metrics text */
  metrics: () => Promise<string>
  health: () => Promise<HealthReport>
  /** the child's stderr, its last lines */
  stderr: () => string
  stop: () => Promise<void>
}

export async function startBackendProc (opts: Omit<ChildOptions, 'db'> = {}): Promise<BackendProc> {
  const dir = mkdtempSync(join(tmpdir(), 'picket-bench-backend-'))
  const db = join(dir, 'picket.db')
  const p: ChildProcess = spawnModule(import.meta.url, './backend-child', [JSON.stringify({ db, ...opts })])
  const stderr = tailStderr(p)
  const created: StoredLatency[] = []
  const waiters = new Map<ChildOut['t'], Array<(m: ChildOut) => void>>()
  p.on('message', (m: ChildOut) => {
    if (m.t === 'findings') { for (const f of m.list) created.push(f); return }
    const w = waiters.get(m.t)?.shift()
    w?.(m)
  })
  const ask = async <T extends ChildOut['t']>(msg: ChildIn | undefined, reply: T, timeoutMs = 30_000): Promise<Extract<ChildOut, { t: T }>> => {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the backend child did not answer '${reply}' within ${timeoutMs} ms; its stderr:\n${stderr()}`)), timeoutMs)
      const onExit = (code: number | null): void => { clearTimeout(timer); reject(new Error(`the backend child exited (${String(code)}); its stderr:\n${stderr()}`)) }
      p.once('exit', onExit)
      const list = waiters.get(reply) ?? []
      list.push(m => { clearTimeout(timer); p.off('exit', onExit); resolve(m as Extract<ChildOut, { t: T }>) })
      waiters.set(reply, list)
      if (msg !== undefined) p.send(msg)
    })
  }
  let ready: Extract<ChildOut, { t: 'ready' }>
  try {
    ready = await ask(undefined, 'ready', 60_000)
  } catch (err) {
    p.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    pid: p.pid as number,
    db,
    address: ready.address,
    workers: ready.workers,
    created,
    mark: async () => { await ask({ t: 'mark' }, 'marked') },
    elu: async () => { const e = await ask({ t: 'elu' }, 'elu'); return { utilization: e.utilization, delayP99Ms: e.delayP99Ms, maxQueued: e.maxQueued } },
    flush: async () => { await ask({ t: 'flush' }, 'flushed', 60_000) },
    mem: async () => (await ask({ t: 'mem' }, 'mem')).usage,
    findings: async () => (await ask({ t: 'findings' }, 'allFindings', 60_000)).list,
    metrics: async () => (await ask({ t: 'metrics' }, 'metrics')).text,
    health: async () => (await ask({ t: 'health' }, 'health')).report,
    stderr,
    stop: async () => {
      if (p.exitCode === null) p.send({ t: 'stop' } satisfies ChildIn)
      await waitExit(p, 15_000)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
